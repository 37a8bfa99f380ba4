// Images: upload straight to the object store with the pre-signed URL, and
// fetch downloads into object URLs the <img> elements show.
import type { ChatClient } from "./client";
import type { OutboxMedia } from "./outbox";

// Browsers set Content-Length themselves and refuse a script that tries.
const BROWSER_OWNED_HEADERS = new Set(["content-length", "host"]);

export async function uploadImage(client: ChatClient, file: File): Promise<OutboxMedia> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const sha256 = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const { width, height } = await imageSize(file);
  const contentType = file.type || "application/octet-stream";
  const pending = await client.createUpload(contentType, bytes.length, sha256);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(pending.uploadHeaders)) {
    if (!BROWSER_OWNED_HEADERS.has(name.toLowerCase())) headers[name] = value;
  }
  const put = await fetch(pending.uploadUrl, { method: "PUT", headers, body: bytes });
  if (!put.ok) throw new Error(`upload refused: ${put.status}`);
  const done = await client.completeUpload(pending.mediaId);
  return { mediaId: done.mediaId, contentType, width, height };
}

async function imageSize(file: File): Promise<{ width: number; height: number }> {
  try {
    const bitmap = await createImageBitmap(file);
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return size;
  } catch {
    return { width: 0, height: 0 };
  }
}

/** Object URLs of downloaded media, by media_id; each fetched once per page load. */
export class MediaCache {
  private readonly urls = new Map<string, string>();
  private readonly loading = new Set<string>();

  constructor(
    private readonly client: ChatClient,
    private readonly changed: () => void,
  ) {}

  url(mediaId: string, conversationId: string): string | undefined {
    const known = this.urls.get(mediaId);
    if (known === undefined && !this.loading.has(mediaId)) void this.load(mediaId, conversationId);
    return known;
  }

  private async load(mediaId: string, conversationId: string): Promise<void> {
    this.loading.add(mediaId);
    try {
      const answer = await this.client.downloadUrl(mediaId, conversationId);
      const response = await fetch(answer.url);
      if (!response.ok) throw new Error(`download refused: ${response.status}`);
      this.urls.set(mediaId, URL.createObjectURL(await response.blob()));
      this.changed();
    } catch {
      // Offline or the URL ran out: the next render asks again.
      window.setTimeout(() => this.loading.delete(mediaId), 2000);
      return;
    }
    this.loading.delete(mediaId);
  }
}
