// A WeChat Pay Native code_url as a QR code image, drawn in the page (the URL goes to no third
// party). The library is imported when the first code is drawn, so no page's first load carries it.
import type { QRCodeToStringOptions } from "qrcode";

/** Medium error correction and the quiet zone WeChat's scanner expects; SVG scales crisply. */
export const QR_OPTIONS = { type: "svg", errorCorrectionLevel: "M", margin: 2 } as const satisfies QRCodeToStringOptions;

/** The QR code of `text` as a data: URL for an <img>. */
export async function qrImageUrl(text: string): Promise<string> {
  const loaded = await import("qrcode");
  // A CommonJS package: its functions are on the default export (or on the namespace itself).
  const qrcode = (loaded as unknown as { default?: typeof loaded }).default ?? loaded;
  const svg = await qrcode.toString(text, QR_OPTIONS);
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}
