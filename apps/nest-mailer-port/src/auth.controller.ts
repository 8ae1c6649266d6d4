import { randomBytes } from 'node:crypto';
import { BadRequestException, Body, Controller, HttpCode, Post } from '@nestjs/common';
import { MailService } from './mail/mail.service.js';

@Controller('auth')
export class AuthController {
  constructor(private mailService: MailService) {}

  /** Sends the confirmation mail; 202 once the SMTP server has accepted it. */
  @Post('register')
  @HttpCode(202)
  async register(@Body() body: { email?: unknown; name?: unknown }) {
    if (typeof body?.email !== 'string' || typeof body.name !== 'string') throw new BadRequestException('email and name are required');
    const token = randomBytes(16).toString('hex');
    await this.mailService.sendUserConfirmation({ email: body.email, name: body.name }, token);
    return { sent: true };
  }
}
