// The chat protocol over a Connection: catch up from a cursor on every
// connect, then resend the outbox; receipts, presence, typing and groups.
// Mirrors chatmesh.client.protocol (the Python client's contract).
import { create } from "@bufbuild/protobuf";
import type { ServerFrame, UploadFrame, DownloadUrlFrame } from "./gen/chatmesh/v1/client_pb";
import {
  ConversationKind,
  ErrorCode,
  MediaAttachmentSchema,
  MessageKind,
  ReceiptKind,
} from "./gen/chatmesh/v1/common_pb";
import type { Connection } from "./connection";
import { newClientMsgId, Outbox, type OutboxEntry, type OutboxMedia, type Target } from "./outbox";
import { Store, toChatMessage } from "./store";
import { requestId, type ClientKind } from "./wire";

// Acks take milliseconds; a send unanswered this long was lost with its connection.
const ACK_TIMEOUT_MS = 5000;
const UNAVAILABLE_RETRY_MS = 500;
// A send refused for the user's rate is resent once the budget refills, not dropped.
const RATE_LIMITED_RETRY_MS = 1500;
const SYNC_RETRY_MS = 1000;
const SYNC_TIMEOUT_MS = 8000;
// The protocol's limit on held_message_ids per sync page request.
const MAX_HELD_IDS = 256;
// Typing states last 6 s on the server unless renewed.
const TYPING_RENEW_MS = 3000;
const TYPING_IDLE_MS = 4000;

type Waiter = (frame: ServerFrame) => void;

export class ChatClient {
  private readonly waiters = new Map<string, Waiter>();
  private caughtUp = false;
  private syncRun = 0;
  private watched = new Set<string>();
  private readonly typingSentAt = new Map<string, number>();
  private readonly typingStop = new Map<string, number>();
  private readonly marked = new Map<string, string>();

  constructor(
    private readonly conn: Connection,
    readonly store: Store,
    readonly outbox: Outbox,
    private readonly cursorKey: string,
  ) {
    window.setInterval(() => this.resendDue(Date.now() - ACK_TIMEOUT_MS), 1000);
  }

  // -- connection events ---------------------------------------------------

  connected(): void {
    this.caughtUp = false;
    this.watched = new Set();
    this.waiters.clear();
    this.outbox.forgetSends();
    this.request({ case: "listConversations", value: { $typeName: "chatmesh.v1.ListConversationsFrame", pageSize: 100, pageToken: "" } }, (f) => {
      if (f.kind.case === "conversationList") {
        for (const s of f.kind.value.conversations) this.store.applySummary(s);
        this.watchContacts();
      }
    });
    this.sync();
  }

  receive(frame: ServerFrame): void {
    const k = frame.kind;
    const rid = "requestId" in (k.value ?? {}) ? (k.value as { requestId: string }).requestId : "";
    if (rid !== "" && this.waiters.has(rid)) {
      const waiter = this.waiters.get(rid)!;
      this.waiters.delete(rid);
      waiter(frame);
      if (k.case !== "ack" && k.case !== "error") return;
    }
    switch (k.case) {
      case "ack": {
        const entry = this.outbox.remove(k.value.clientMsgId);
        if (entry === undefined) return; // a second ack of a resend
        const known = this.store.conversations.has(k.value.conversationId);
        if ("toUserId" in entry.target) this.store.directWith.set(entry.target.toUserId, k.value.conversationId);
        this.store.addMessage({
          messageId: k.value.messageId,
          conversationId: k.value.conversationId,
          sender: this.store.me,
          clientMsgId: entry.clientMsgId,
          kind: entry.kind,
          text: entry.body,
          createdAtMs: Number(k.value.createdAtMs),
          media: entry.media,
        });
        if (!known) this.refreshList();
        return;
      }
      case "deliver": {
        const m = k.value.message;
        if (m === undefined) return;
        const fresh = !this.store.conversations.has(m.conversationId);
        if (this.store.addMessage(toChatMessage(m)) && m.senderUserId !== this.store.me) {
          const c = this.store.conversation(m.conversationId);
          if (this.store.openId !== m.conversationId) c.unread += 1;
        }
        if (fresh || m.kind === MessageKind.SYSTEM) this.refreshList();
        this.markSeen(m.conversationId);
        return;
      }
      case "error": {
        const id = k.value.clientMsgId;
        if (id === "" || this.outbox.get(id) === undefined) return;
        if (k.value.code === ErrorCode.UNAVAILABLE) {
          this.outbox.markSent(id, Date.now() - ACK_TIMEOUT_MS + UNAVAILABLE_RETRY_MS);
        } else if (k.value.reason === "RATE_LIMITED") {
          this.outbox.markSent(id, Date.now() - ACK_TIMEOUT_MS + RATE_LIMITED_RETRY_MS);
        } else {
          const entry = this.outbox.remove(id);
          if (entry !== undefined) this.store.failed.push({ entry, reason: k.value.reason || k.value.message });
          this.store.touch();
        }
        return;
      }
      case "watermark":
        if (k.value.watermark) this.store.applyWatermark(k.value.watermark);
        return;
      case "receiptCounts":
        this.store.applyReceiptCounts(k.value.conversationId, k.value.counts);
        return;
      case "presence":
        for (const p of k.value.presences) this.store.applyPresence(p);
        return;
      case "typingActivity":
        this.store.applyTyping(k.value.conversationId, k.value.typingUserIds, k.value.stoppedUserIds, k.value.ttlMs);
        return;
      case "group":
        if (k.value.group) this.store.applyGroup(k.value.group);
        if (k.value.event) this.store.addMessage(toChatMessage(k.value.event));
        this.watchContacts();
        return;
      case "syncRequired":
        this.sync();
        return;
      default:
        return; // pongs, and kinds this page does not know
    }
  }

  // -- catch-up --------------------------------------------------------------

  /** One run at a time: a newer run (or connection) makes older answers moot. */
  private sync(): void {
    const run = ++this.syncRun;
    // An answer lost with a gateway leaves the run waiting: start it over.
    window.setTimeout(() => {
      if (run === this.syncRun && !this.caughtUp) this.sync();
    }, SYNC_TIMEOUT_MS);
    const cursor = localStorage.getItem(this.cursorKey) ?? "";
    this.request({ case: "sync", value: { $typeName: "chatmesh.v1.SyncFrame", cursor } }, (f) => {
      if (run !== this.syncRun) return;
      if (f.kind.case !== "syncSummary") return this.retrySync(run);
      const summary = f.kind.value;
      for (const s of summary.conversations) this.store.applySummary(s);
      if (summary.gap) this.refreshList();
      const pending = summary.conversations.map((s) => s.conversationId);
      // Name what is held from the window's floor up (above the previous
      // page's last message) so the server does not send it again.
      let lowest = summary.windowFloorId;
      const next = (pageToken: string): void => {
        const conversationId = pending[0];
        if (conversationId === undefined) {
          localStorage.setItem(this.cursorKey, summary.nextCursor);
          this.caughtUp = true;
          this.watchContacts();
          this.resendDue(Number.MAX_SAFE_INTEGER);
          for (const id of summary.conversations.map((s) => s.conversationId)) this.markSeen(id);
          return;
        }
        const heldMessageIds = this.store.heldIds(conversationId, lowest, MAX_HELD_IDS);
        this.request(
          { case: "syncConversation", value: { $typeName: "chatmesh.v1.SyncConversationFrame", conversationId, cursor, pageToken, pageSize: 50, heldMessageIds } },
          (page) => {
            if (run !== this.syncRun) return;
            if (page.kind.case !== "syncPage") return this.retrySync(run);
            const messages = page.kind.value.messages;
            for (const m of messages) this.store.addMessage(toChatMessage(m));
            const last = messages[messages.length - 1];
            if (last !== undefined && last.messageId >= lowest) lowest = last.messageId + 1n;
            if (page.kind.value.nextPageToken === "") {
              pending.shift();
              lowest = summary.windowFloorId;
            }
            next(page.kind.value.nextPageToken);
          },
        );
      };
      next("");
    });
  }

  private retrySync(run: number): void {
    window.setTimeout(() => {
      if (run === this.syncRun) this.sync();
    }, SYNC_RETRY_MS);
  }

  private refreshList(): void {
    this.request({ case: "listConversations", value: { $typeName: "chatmesh.v1.ListConversationsFrame", pageSize: 100, pageToken: "" } }, (f) => {
      if (f.kind.case === "conversationList") for (const s of f.kind.value.conversations) this.store.applySummary(s);
      this.watchContacts();
    });
  }

  /** Older messages of a conversation (the newest page), merged by message_id. */
  loadHistory(conversationId: string): void {
    this.request(
      { case: "history", value: { $typeName: "chatmesh.v1.HistoryFrame", conversationId, pageSize: 50, pageToken: "" } },
      (f) => {
        if (f.kind.case === "historyPage") for (const m of f.kind.value.messages) this.store.addMessage(toChatMessage(m));
        this.markSeen(conversationId);
      },
    );
  }

  // -- sending ---------------------------------------------------------------

  send(target: Target, text: string, media?: OutboxMedia): string {
    const entry: OutboxEntry = {
      clientMsgId: newClientMsgId(),
      target,
      kind: media ? MessageKind.IMAGE : MessageKind.TEXT,
      body: text,
      media,
      createdAtMs: Date.now(),
    };
    this.outbox.add(entry);
    if ("conversationId" in target) this.stopTyping(target.conversationId);
    if (this.caughtUp) this.write(entry);
    this.store.touch();
    return entry.clientMsgId;
  }

  private resendDue(beforeMs: number): void {
    if (!this.caughtUp) return;
    for (const entry of this.outbox.due(beforeMs)) this.write(entry);
  }

  private write(entry: OutboxEntry): void {
    const target =
      "conversationId" in entry.target
        ? { case: "conversationId" as const, value: entry.target.conversationId }
        : { case: "toUserId" as const, value: entry.target.toUserId };
    const media = entry.media
      ? create(MediaAttachmentSchema, { mediaId: entry.media.mediaId, width: entry.media.width, height: entry.media.height })
      : undefined;
    const sent = this.conn.send({
      case: "send",
      value: {
        $typeName: "chatmesh.v1.SendFrame",
        clientMsgId: entry.clientMsgId,
        target,
        kind: entry.kind,
        body: new TextEncoder().encode(entry.body),
        media,
      },
    });
    if (sent) this.outbox.markSent(entry.clientMsgId, Date.now());
  }

  // -- receipts, presence, typing -----------------------------------------------

  /** Reports the newest message held as delivered, and as read when it is on screen. */
  markSeen(conversationId: string): void {
    const c = this.store.conversations.get(conversationId);
    if (c?.last === undefined || c.left) return;
    const id = c.last.messageId;
    const reading = this.store.openId === conversationId && document.visibilityState === "visible";
    const kind = reading ? ReceiptKind.READ : ReceiptKind.DELIVERED;
    const key = `${kind}:${id}`;
    if (this.marked.get(conversationId) === key) return;
    if (this.conn.send({ case: "mark", value: { $typeName: "chatmesh.v1.MarkFrame", conversationId, kind, messageId: id } })) {
      this.marked.set(conversationId, key);
    }
    if (reading) c.unread = 0;
  }

  private watchContacts(): void {
    const fresh = this.store.contacts().filter((u) => !this.watched.has(u)).slice(0, 200 - this.watched.size);
    if (fresh.length === 0) return;
    if (this.conn.send({ case: "watchPresence", value: { $typeName: "chatmesh.v1.WatchPresenceFrame", userIds: fresh } })) {
      for (const u of fresh) this.watched.add(u);
    }
  }

  /** The user typed in a conversation's composer. */
  typed(conversationId: string): void {
    const now = Date.now();
    if (now - (this.typingSentAt.get(conversationId) ?? 0) >= TYPING_RENEW_MS) {
      this.typingSentAt.set(conversationId, now);
      this.conn.send({ case: "typing", value: { $typeName: "chatmesh.v1.TypingFrame", conversationId, typing: true } });
    }
    window.clearTimeout(this.typingStop.get(conversationId));
    this.typingStop.set(conversationId, window.setTimeout(() => this.stopTyping(conversationId), TYPING_IDLE_MS));
  }

  private stopTyping(conversationId: string): void {
    window.clearTimeout(this.typingStop.get(conversationId));
    if (!this.typingSentAt.delete(conversationId)) return;
    this.conn.send({ case: "typing", value: { $typeName: "chatmesh.v1.TypingFrame", conversationId, typing: false } });
  }

  // -- groups ------------------------------------------------------------------

  createGroup(title: string, members: string[], done: (conversationId: string) => void): void {
    this.request(
      { case: "createGroup", value: { $typeName: "chatmesh.v1.CreateGroupFrame", clientGroupId: crypto.randomUUID(), title, memberUserIds: members, kind: ConversationKind.GROUP } },
      (f) => {
        if (f.kind.case === "group" && f.kind.value.group) {
          this.receive(f);
          done(f.kind.value.group.conversationId);
        } else if (f.kind.case === "error") {
          window.alert(`group not created: ${f.kind.value.reason}`);
        }
      },
    );
  }

  changeMembers(conversationId: string, change: { add?: string[]; remove?: string }): void {
    const kind = change.add
      ? { case: "addMembers" as const, value: { $typeName: "chatmesh.v1.AddMembersChange" as const, userIds: change.add } }
      : { case: "removeMember" as const, value: { $typeName: "chatmesh.v1.RemoveMemberChange" as const, userId: change.remove ?? "" } };
    this.request({ case: "changeGroup", value: { $typeName: "chatmesh.v1.ChangeGroupFrame", conversationId, change: kind } }, (f) => {
      if (f.kind.case === "group") this.receive(f);
      else if (f.kind.case === "error") window.alert(`not changed: ${f.kind.value.reason}`);
    });
  }

  // -- media ---------------------------------------------------------------------

  createUpload(contentType: string, size: number, sha256: Uint8Array): Promise<UploadFrame> {
    return this.ask(
      { case: "createUpload", value: { $typeName: "chatmesh.v1.CreateUploadFrame", kind: MessageKind.IMAGE, contentType, sizeBytes: BigInt(size), sha256 } },
      (f) => (f.kind.case === "upload" ? f.kind.value : undefined),
    );
  }

  completeUpload(mediaId: string): Promise<UploadFrame> {
    return this.ask(
      { case: "completeUpload", value: { $typeName: "chatmesh.v1.CompleteUploadFrame", mediaId } },
      (f) => (f.kind.case === "upload" ? f.kind.value : undefined),
    );
  }

  downloadUrl(mediaId: string, conversationId: string): Promise<DownloadUrlFrame> {
    return this.ask(
      { case: "getDownloadUrl", value: { $typeName: "chatmesh.v1.GetDownloadUrlFrame", mediaId, conversationId } },
      (f) => (f.kind.case === "downloadUrl" ? f.kind.value : undefined),
    );
  }

  /** One request and its answer; an error frame (or being offline) rejects. */
  private ask<T>(kind: ClientKind, pick: (frame: ServerFrame) => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const sent = this.request(kind, (f) => {
        const answer = pick(f);
        if (answer !== undefined) resolve(answer);
        else reject(new Error(f.kind.case === "error" ? f.kind.value.reason : "unexpected answer"));
      });
      if (!sent) reject(new Error("offline"));
    });
  }

  private request(kind: ClientKind, waiter: Waiter): boolean {
    const id = requestId();
    this.waiters.set(id, waiter);
    const sent = this.conn.send(kind, id);
    if (!sent) this.waiters.delete(id);
    return sent;
  }
}
