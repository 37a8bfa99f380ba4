// Sends not yet acknowledged, kept in localStorage so a reload or a crash of
// the tab loses nothing: each is resent under its own client_msg_id (the
// server stores a send once) until its ack or a definite error.

export type Target = { readonly conversationId: string } | { readonly toUserId: string };

export interface OutboxMedia {
  readonly mediaId: string;
  readonly contentType: string;
  readonly width: number;
  readonly height: number;
}

export interface OutboxEntry {
  readonly clientMsgId: string;
  readonly target: Target;
  /** MessageKind number. */
  readonly kind: number;
  readonly body: string;
  readonly media?: OutboxMedia;
  readonly createdAtMs: number;
}

export class Outbox {
  private entries: OutboxEntry[];
  /** When each entry was last written to a connection (not persisted). */
  private readonly sentAt = new Map<string, number>();

  constructor(private readonly storageKey: string) {
    this.entries = load(storageKey);
  }

  all(): readonly OutboxEntry[] {
    return this.entries;
  }

  add(entry: OutboxEntry): void {
    this.entries.push(entry);
    this.save();
  }

  get(clientMsgId: string): OutboxEntry | undefined {
    return this.entries.find((e) => e.clientMsgId === clientMsgId);
  }

  remove(clientMsgId: string): OutboxEntry | undefined {
    const entry = this.get(clientMsgId);
    if (entry === undefined) return undefined;
    this.entries = this.entries.filter((e) => e.clientMsgId !== clientMsgId);
    this.sentAt.delete(clientMsgId);
    this.save();
    return entry;
  }

  markSent(clientMsgId: string, atMs: number): void {
    this.sentAt.set(clientMsgId, atMs);
  }

  /** Entries written before `beforeMs` (or never) and still unacknowledged. */
  due(beforeMs: number): OutboxEntry[] {
    return this.entries.filter((e) => (this.sentAt.get(e.clientMsgId) ?? 0) < beforeMs);
  }

  forgetSends(): void {
    this.sentAt.clear();
  }

  private save(): void {
    localStorage.setItem(this.storageKey, JSON.stringify(this.entries));
  }
}

function load(key: string): OutboxEntry[] {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? [] : (JSON.parse(raw) as OutboxEntry[]);
  } catch {
    return [];
  }
}

export function newClientMsgId(): string {
  return `w-${crypto.randomUUID()}`;
}
