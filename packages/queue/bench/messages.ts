/** The bench's and the soak's messages: about 1 KiB each, every one to its own recipient (so duplicates show). */
const filler = `${'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(16)}\r\n`;

export function benchMessage(i: number) {
  return {
    envelope: { from: 'bench@sluice.test', to: [`rcpt-${i}@example.com`] },
    body: `From: bench@sluice.test\r\nTo: rcpt-${i}@example.com\r\nSubject: Message ${i}\r\nMessage-ID: <bench-${i}@sluice.test>\r\n\r\n${filler}`,
    messageId: `<bench-${i}@sluice.test>`,
  };
}
