import { BadRequestException, Body, Controller, HttpCode, HttpStatus, Inject, Post } from '@nestjs/common';
import { isSluiceError, type Outcome } from '@sluice/core';
import { MailerService } from '@sluice/nestjs';

const FROM = { name: 'Sluice Example', address: 'hello@example.com' };
const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;

function text(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > max) throw new BadRequestException(`${field} must be a non-empty string`);
  return value.trim();
}

@Controller()
export class MailController {
  // Explicit @Inject: the build (tsup/esbuild) emits no decorator metadata.
  constructor(@Inject(MailerService) private readonly mailer: MailerService) {}

  /** Sends a welcome mail; 202 once the SMTP server accepted it. */
  @Post('signup')
  @HttpCode(HttpStatus.ACCEPTED)
  async signup(@Body() body: { email?: unknown; name?: unknown } = {}) {
    const email = text(body.email, 'email', 254);
    const name = text(body.name, 'name', 100).replace(/[\r\n]/g, ' ');
    if (!EMAIL.test(email)) throw new BadRequestException('email is not an address');
    // A SluiceError goes to SluiceExceptionFilter (app.module.ts): 422 refused, 503 transient…
    const result = await this.mailer.sendMail({
      from: FROM,
      to: { name, address: email },
      subject: `Welcome, ${name}!`,
      text: `Hello ${name},\n\nthanks for signing up.\n`,
    });
    return { messageId: result.messageId };
  }

  /** Sends `count` messages (default 1000) and reports how each ended. */
  @Post('bulk')
  @HttpCode(HttpStatus.OK)
  async bulk(@Body() body: { count?: unknown } = {}) {
    const count = body.count ?? 1000;
    if (!Number.isInteger(count) || (count as number) < 1 || (count as number) > 100_000) {
      throw new BadRequestException('count must be an integer from 1 to 100000');
    }
    const sends = Array.from({ length: count as number }, (_, i) =>
      this.mailer.sendMail({ from: FROM, to: `bulk${i}@example.com`, subject: `Newsletter #${i}`, text: `Issue ${i}\n` }),
    );
    const counts: Record<Outcome, number> = { delivered: 0, rejected: 0, failed: 0, unknown: 0 };
    for (const result of await Promise.allSettled(sends)) {
      const outcome = result.status === 'fulfilled' ? 'delivered' : isSluiceError(result.reason) ? (result.reason.outcome ?? 'failed') : 'failed';
      counts[outcome]++;
    }
    return counts;
  }
}
