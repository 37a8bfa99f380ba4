// What the page knows: conversations, their messages (each once, by
// message_id), receipts, presence and typing. Views read it; the client
// writes it and calls `changed`.
import {
  ConversationKind,
  MemberRole,
  MessageKind,
  PresenceStatus,
  type ConversationSummary,
  type GroupInfo,
  type Message,
  type Presence,
  type ReceiptCounts,
  type Watermark,
} from "./gen/chatmesh/v1/common_pb";
import type { OutboxEntry } from "./outbox";

export interface ChatMessage {
  readonly messageId: bigint;
  readonly conversationId: string;
  readonly sender: string;
  readonly clientMsgId: string;
  readonly kind: MessageKind;
  readonly text: string;
  readonly createdAtMs: number;
  readonly media?: { readonly mediaId: string; readonly width: number; readonly height: number };
}

export interface Marks {
  delivered: bigint;
  read: bigint;
}

export interface Conversation {
  readonly id: string;
  kind: ConversationKind;
  title: string;
  members: string[];
  admins: Set<string>;
  left: boolean;
  /** By message_id as a decimal string. */
  readonly messages: Map<string, ChatMessage>;
  unread: number;
  lastActivityMs: number;
  /** Newest message held or summarized. */
  last?: ChatMessage;
  readonly watermarks: Map<string, Marks>;
  readonly receipts: Map<string, ReceiptCounts>;
  /** Typing members and when their state runs out. */
  readonly typing: Map<string, number>;
}

const decoder = new TextDecoder();

export function toChatMessage(m: Message): ChatMessage {
  return {
    messageId: m.messageId,
    conversationId: m.conversationId,
    sender: m.senderUserId,
    clientMsgId: m.clientMsgId,
    kind: m.kind,
    text: m.kind === MessageKind.SYSTEM ? describeSystem(m) : decoder.decode(m.body),
    createdAtMs: Number(m.createdAtMs),
    media: m.media ? { mediaId: m.media.mediaId, width: m.media.width, height: m.media.height } : undefined,
  };
}

function describeSystem(m: Message): string {
  const s = m.system;
  const actor = s?.actorUserId ?? "someone";
  switch (s?.event.case) {
    case "groupCreated":
      return `${actor} created "${s.event.value.title}"`;
    case "membersAdded":
      return `${actor} added ${s.event.value.userIds.join(", ")}`;
    case "memberRemoved":
      return `${actor} removed ${s.event.value.userId}`;
    case "memberLeft":
      return `${actor} left`;
    case "titleChanged":
      return `${actor} renamed the group to "${s.event.value.title}"`;
    case "roleChanged":
      return `${actor} changed ${s.event.value.userId}'s role`;
    default:
      return "group changed";
  }
}

export class Store {
  readonly conversations = new Map<string, Conversation>();
  readonly presence = new Map<string, Presence>();
  /** Sends refused for good, with why: shown, never resent. */
  readonly failed: { readonly entry: OutboxEntry; readonly reason: string }[] = [];
  /** The 1:1 conversation with each user, once known. */
  readonly directWith = new Map<string, string>();
  openId: string | undefined;

  constructor(
    readonly me: string,
    private readonly changed: () => void,
  ) {}

  touch(): void {
    this.changed();
  }

  conversation(id: string): Conversation {
    let c = this.conversations.get(id);
    if (c === undefined) {
      c = {
        id,
        kind: ConversationKind.UNSPECIFIED,
        title: "",
        members: [],
        admins: new Set(),
        left: false,
        messages: new Map(),
        unread: 0,
        lastActivityMs: 0,
        watermarks: new Map(),
        receipts: new Map(),
        typing: new Map(),
      };
      this.conversations.set(id, c);
    }
    return c;
  }

  /** Newest activity first. */
  sorted(): Conversation[] {
    return [...this.conversations.values()].sort((a, b) => b.lastActivityMs - a.lastActivityMs);
  }

  applySummary(s: ConversationSummary): void {
    const c = this.conversation(s.conversationId);
    c.kind = s.kind;
    c.title = s.title;
    c.left = s.left;
    if (s.members.length > 0) this.setMembers(c, s.members);
    else if (s.memberUserIds.length > 0) c.members = [...s.memberUserIds];
    c.unread = s.unreadCount;
    if (s.kind === ConversationKind.DIRECT) {
      const peer = c.members.find((m) => m !== this.me);
      if (peer !== undefined) this.directWith.set(peer, c.id);
    }
    for (const w of s.memberWatermarks) this.applyWatermark(w);
    if (s.lastMessageReceipts) c.receipts.set(String(s.lastMessageReceipts.messageId), s.lastMessageReceipts);
    if (s.lastMessage) this.noteLast(c, toChatMessage(s.lastMessage));
    this.changed();
  }

  applyGroup(g: GroupInfo): void {
    const c = this.conversation(g.conversationId);
    c.kind = g.kind;
    c.title = g.title;
    this.setMembers(c, g.members);
    c.left = !c.members.includes(this.me);
    if (c.lastActivityMs === 0) c.lastActivityMs = Date.now();
    this.changed();
  }

  private setMembers(c: Conversation, members: GroupInfo["members"]): void {
    c.members = members.map((m) => m.userId);
    c.admins = new Set(members.filter((m) => m.role === MemberRole.ADMIN).map((m) => m.userId));
  }

  /** Adds a message unless held already; true when it is new. */
  /** The `atMost` smallest message ids held in a conversation that are at
   * least `lowest`, ascending: what a sync page request names as held. */
  heldIds(conversationId: string, lowest: bigint, atMost: number): bigint[] {
    const c = this.conversations.get(conversationId);
    if (c === undefined) return [];
    const ids: bigint[] = [];
    for (const m of c.messages.values()) if (m.messageId >= lowest) ids.push(m.messageId);
    ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return ids.slice(0, atMost);
  }

  addMessage(m: ChatMessage): boolean {
    const c = this.conversation(m.conversationId);
    const key = String(m.messageId);
    if (c.messages.has(key)) return false;
    c.messages.set(key, m);
    this.noteLast(c, m);
    c.typing.delete(m.sender);
    this.changed();
    return true;
  }

  private noteLast(c: Conversation, m: ChatMessage): void {
    if (c.last === undefined || m.messageId >= c.last.messageId) {
      c.last = m;
      c.lastActivityMs = Math.max(c.lastActivityMs, m.createdAtMs);
    }
  }

  /** Messages in message_id order. */
  messages(c: Conversation): ChatMessage[] {
    return [...c.messages.values()].sort((a, b) => (a.messageId < b.messageId ? -1 : 1));
  }

  applyWatermark(w: Watermark): void {
    const c = this.conversation(w.conversationId);
    const marks = c.watermarks.get(w.userId) ?? { delivered: 0n, read: 0n };
    // Watermarks only move forward; frames may arrive out of order.
    if (w.deliveredMessageId > marks.delivered) marks.delivered = w.deliveredMessageId;
    if (w.readMessageId > marks.read) marks.read = w.readMessageId;
    c.watermarks.set(w.userId, marks);
    if (w.userId === this.me && c.last && marks.read >= c.last.messageId) c.unread = 0;
    this.changed();
  }

  applyReceiptCounts(conversationId: string, counts: readonly ReceiptCounts[]): void {
    const c = this.conversation(conversationId);
    for (const r of counts) c.receipts.set(String(r.messageId), r);
    this.changed();
  }

  applyPresence(p: Presence): void {
    const known = this.presence.get(p.userId);
    // Of a snapshot and a change about one user, the later one wins.
    if (known && known.changedAtMs > p.changedAtMs) return;
    this.presence.set(p.userId, p);
    this.changed();
  }

  isOnline(userId: string): boolean {
    return this.presence.get(userId)?.status === PresenceStatus.ONLINE;
  }

  applyTyping(conversationId: string, typing: readonly string[], stopped: readonly string[], ttlMs: number): void {
    const c = this.conversation(conversationId);
    for (const u of stopped) c.typing.delete(u);
    for (const u of typing) if (u !== this.me) c.typing.set(u, Date.now() + ttlMs);
    this.changed();
    window.setTimeout(() => this.changed(), ttlMs + 50);
  }

  typingNow(c: Conversation): string[] {
    const now = Date.now();
    return [...c.typing.entries()].filter(([, until]) => until > now).map(([u]) => u);
  }

  /** Everyone sharing a conversation with this user. */
  contacts(): string[] {
    const all = new Set<string>();
    for (const c of this.conversations.values()) for (const m of c.members) if (m !== this.me) all.add(m);
    return [...all].sort();
  }

  displayName(c: Conversation): string {
    if (c.kind === ConversationKind.DIRECT || (c.title === "" && c.members.length === 2)) {
      return c.members.find((m) => m !== this.me) ?? c.id;
    }
    return c.title || c.id;
  }
}
