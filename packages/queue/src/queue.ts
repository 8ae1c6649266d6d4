/**
 * The producer side: MailQueue puts messages on a BullMQ queue as exact bytes (composed at enqueue,
 * DKIM included), refuses what Redis should not hold, and lists and releases held jobs.
 */
import type { MailOptions, Message } from '@sluice/core';
import { type JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import type { DKIMOptions } from 'nodemailer/lib/dkim';
import { type QueueCounts, jobCounts } from './counts.js';
import { QueueError, QueueErrorCodes } from './errors.js';
import { type HeldEntry, listHeld, takeHeld } from './held.js';
import { DEFAULT_PREFIX, heldKey } from './keys.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type MailJobData, newJobId, toJobData } from './message.js';
import { type RedisConnection, createClient } from './redis.js';

/** Job options, named as BullMQ names them. */
export interface MailJobOptions {
  /** Idempotent enqueue: a second add() with the same jobId is a no-op while the job exists. */
  jobId?: string;
  /** ms before the job may run. */
  delay?: number;
  /** 1 (highest) … 2 097 152; default none (FIFO). */
  priority?: number;
  /** Transient failures are retried up to this many attempts in all. Default 5. */
  attempts?: number;
  /** BullMQ backoff between attempts. Default exponential from 2 s, with jitter. */
  backoff?: JobsOptions['backoff'];
  /** Default: keep the last 1000 completed jobs (their bodies go with them). */
  removeOnComplete?: JobsOptions['removeOnComplete'];
  /** Default false: failed jobs stay, and held jobs must (release() retries them). */
  removeOnFail?: JobsOptions['removeOnFail'];
}

export interface MailQueueOptions {
  connection: RedisConnection;
  /** BullMQ's key prefix. Default 'bull' (use '{bull}' on Redis Cluster). */
  prefix?: string;
  /** Prefix of sluice's own keys (budget, markers, held list). Default 'sluice'. */
  keyPrefix?: string;
  /** Larger messages are refused at enqueue with EQUEUESIZE. Default 10 MiB. */
  maxMessageSize?: number;
  defaultJobOptions?: MailJobOptions;
  /** DKIM for addMail(), nodemailer's options ({ domainName, keySelector, privateKey, … }). */
  dkim?: DKIMOptions;
}

export type { QueueCounts };

export const JOB_NAME = 'mail';

const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2000, jitter: 0.5 },
  removeOnComplete: { count: 1000 },
  removeOnFail: false,
};

export class MailQueue {
  /** The BullMQ queue underneath (for QueueEvents, dashboards, getJobCounts…). */
  readonly queue: Queue<MailJobData>;
  private readonly redis: Redis;
  private readonly heldKey: string;
  private readonly maxSize: number;
  private readonly defaults: JobsOptions;
  private readonly composer: ReturnType<typeof nodemailer.createTransport>;
  private closed = false;

  constructor(
    readonly name: string,
    options: MailQueueOptions,
  ) {
    if (!options || typeof options !== 'object' || !options.connection) throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, 'MailQueue needs { connection }');
    const maxSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (!(Number.isInteger(maxSize) && maxSize > 0)) throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, 'maxMessageSize must be a positive integer (bytes)');
    this.maxSize = maxSize;
    this.defaults = { ...DEFAULT_JOB_OPTIONS, ...options.defaultJobOptions };
    this.redis = createClient(options.connection, `sluice-queue:${name}`);
    this.queue = new Queue<MailJobData>(name, { connection: createClient(options.connection, `sluice-bullmq:${name}`), prefix: options.prefix });
    // Connection errors: ioredis reconnects, and commands wait meanwhile (callers see their own rejections).
    this.queue.on('error', () => {});
    this.heldKey = heldKey(options.keyPrefix ?? DEFAULT_PREFIX, name);
    // Composition only: nodemailer's stream transport builds the bytes (and signs them) and sends nothing.
    this.composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows', dkim: options.dkim });
  }

  /** Enqueues a message as is: `{ envelope, body }`, the body a Buffer or string. */
  async add(message: Message, opts: MailJobOptions = {}) {
    this.open();
    const jobId = opts.jobId ?? newJobId();
    const data = toJobData(message, jobId, this.maxSize);
    return this.queue.add(JOB_NAME, data, { ...this.defaults, ...opts, jobId });
  }

  /** Composes (nodemailer's composer, DKIM with the queue's `dkim`) now, so the worker sends exact bytes. */
  async addMail(mail: MailOptions, opts: MailJobOptions = {}) {
    return this.add(await this.compose(mail), opts);
  }

  /** Several at once, in one round trip. Every message is checked before any is stored. */
  async addBulk(entries: Array<{ message?: Message; mail?: MailOptions; opts?: MailJobOptions }>) {
    this.open();
    const jobs = await Promise.all(
      entries.map(async (e) => {
        const message = e.message ?? (e.mail ? await this.compose(e.mail) : undefined);
        const jobId = e.opts?.jobId ?? newJobId();
        return { name: JOB_NAME, data: toJobData(message as Message, jobId, this.maxSize), opts: { ...this.defaults, ...e.opts, jobId } };
      }),
    );
    return this.queue.addBulk(jobs);
  }

  /** Jobs held because their outcome is unknown (possibly delivered), oldest first. */
  held(): Promise<HeldEntry[]> {
    return listHeld(this.redis, this.heldKey);
  }

  /**
   * Sends a held job again: you accept that it may be delivered twice. Clears its in-flight marker
   * and moves it back to waiting. ENOTHELD if it is not held.
   */
  async release(jobId: string): Promise<void> {
    this.open();
    const entry = await takeHeld(this.redis, this.heldKey, jobId);
    if (!entry) throw new QueueError(QueueErrorCodes.ENOTHELD, `Job ${jobId} is not held`);
    const job = await this.queue.getJob(jobId);
    if (!job) throw new QueueError(QueueErrorCodes.ENOTHELD, `Job ${jobId} no longer exists`);
    await this.redis.del(entry.marker);
    await job.retry('failed', { resetAttemptsMade: true });
    await this.redis.hdel(this.heldKey, jobId);
  }

  counts(): Promise<QueueCounts> {
    return jobCounts(this.queue, this.redis, this.heldKey);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.composer.close();
    await this.queue.close();
    this.redis.disconnect();
  }

  private async compose(mail: MailOptions): Promise<Message> {
    try {
      const { dsn, ...rest } = mail;
      const info = await this.composer.sendMail(rest);
      return { envelope: { from: info.envelope.from || '', to: info.envelope.to, dsn }, body: info.message as Buffer, messageId: info.messageId };
    } catch (cause) {
      throw new QueueError(QueueErrorCodes.EQUEUEMESSAGE, `The message could not be composed: ${(cause as Error)?.message ?? cause}`, { cause });
    }
  }

  private open(): void {
    if (this.closed) throw new QueueError(QueueErrorCodes.EQUEUECLOSED, 'The queue is closed');
  }
}
