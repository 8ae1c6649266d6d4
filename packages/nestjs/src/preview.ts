import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { MailOptions } from '@sluice/core';

export interface MailPreview {
  /** The message options as they would be composed: defaults merged, templates rendered. */
  mail: MailOptions;
  /** A standalone HTML page: the headers (From, To, Cc, Bcc, Reply-To, Subject) above the HTML body, or the text body. */
  html: string;
  /** The absolute path the page was written to, when `file` was given. */
  file?: string;
}

const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function addresses(value: unknown): string {
  if (value === undefined || value === null || value === false) return '';
  if (Array.isArray(value)) return value.map(addresses).filter(Boolean).join(', ');
  if (typeof value === 'object') {
    const { name, address } = value as { name?: string; address?: string };
    return name ? `${name} <${address ?? ''}>` : (address ?? '');
  }
  return String(value);
}

/** The preview page of a composed mail. The body is shown in a sandboxed iframe, so its styles and scripts stay inside. */
export function previewPage(mail: MailOptions): string {
  const rows = (
    [
      ['From', addresses(mail.from)],
      ['To', addresses(mail.to)],
      ['Cc', addresses(mail.cc)],
      ['Bcc', addresses(mail.bcc)],
      ['Reply-To', addresses(mail.replyTo)],
      ['Subject', mail.subject ?? ''],
    ] as const
  ).filter(([, value]) => value !== '');
  const table = rows.map(([label, value]) => `<tr><th>${label}</th><td>${escapeHtml(String(value))}</td></tr>`).join('');
  const body =
    typeof mail.html === 'string' || Buffer.isBuffer(mail.html)
      ? `<iframe sandbox srcdoc="${escapeHtml(String(mail.html))}"></iframe>`
      : `<pre>${escapeHtml(typeof mail.text === 'string' || Buffer.isBuffer(mail.text) ? String(mail.text) : '')}</pre>`;
  return [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${escapeHtml(String(mail.subject ?? 'Mail preview'))}</title>`,
    '<style>body{font-family:system-ui,sans-serif;margin:1rem}th{text-align:right;padding-right:1em;color:#555}iframe{width:100%;height:80vh;border:1px solid #ccc}</style>',
    `</head><body><table>${table}</table>${body}</body></html>`,
    '',
  ].join('\n');
}

/** Writes the preview page to `file` (its directory created), and returns the absolute path. */
export async function writePreview(file: string, html: string): Promise<string> {
  const path = resolve(file);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, html);
  return path;
}

/** The preview of a composed mail: its page, written to `file` when given. */
export async function previewMail(mail: MailOptions, file?: string): Promise<MailPreview> {
  const html = previewPage(mail);
  return file === undefined ? { mail, html } : { mail, html, file: await writePreview(file, html) };
}
