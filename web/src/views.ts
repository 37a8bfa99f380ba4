// Plain-DOM rendering of the store. Everything re-renders on a change (once
// per task at most); the composer is static so typing is never lost.
import { ConversationKind, MessageKind, PresenceStatus } from "./gen/chatmesh/v1/common_pb";
import type { ConnState } from "./connection";
import type { MediaCache } from "./media";
import type { OutboxEntry } from "./outbox";
import type { ChatMessage, Conversation, Store } from "./store";

/** What is on screen: a conversation, or a new 1:1 chat with a user not yet written to. */
export type View = { readonly conversationId: string } | { readonly toUserId: string } | undefined;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "testid") node.dataset.testid = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

export function byTestId<T extends HTMLElement>(id: string): T {
  const node = document.querySelector<T>(`[data-testid="${id}"]`);
  if (node === null) throw new Error(`missing element ${id}`);
  return node;
}

export function renderState(state: ConnState): void {
  const banner = byTestId("conn-state");
  banner.dataset.state = state.kind;
  if (state.kind === "online") {
    banner.textContent = "Online";
    byTestId("gateway").textContent = state.gatewayId;
  } else if (state.kind === "connecting") {
    banner.textContent = "Connecting…";
  } else {
    const s = Math.max(0, Math.ceil((state.retryAtMs - Date.now()) / 1000));
    banner.textContent = `Offline: ${state.reason}, retrying${s > 0 ? ` in ${s} s` : ""}…`;
  }
}

export function renderList(store: Store, open: (id: string) => void): void {
  const list = byTestId("conversation-list");
  list.replaceChildren(
    ...store.sorted().filter((c) => !c.left).map((c) => {
      const last = c.last ? `${c.last.sender === store.me ? "You" : c.last.sender}: ${preview(c.last)}` : "";
      const item = el(
        "li",
        { testid: "conversation", "data-conversation-id": c.id, "data-name": store.displayName(c) },
        el("span", { class: "name", testid: "conversation-name" }, store.displayName(c)),
        c.unread > 0 ? el("span", { class: "unread", testid: "unread-count" }, String(c.unread)) : "",
        el("div", { class: "last", testid: "conversation-last" }, last),
      );
      if (store.openId === c.id) item.classList.add("open");
      item.onclick = () => open(c.id);
      return item;
    }),
  );
}

function preview(m: ChatMessage): string {
  return m.kind === MessageKind.IMAGE ? `📷 ${m.text}`.trim() : m.text;
}

export function renderChat(store: Store, view: View, outbox: readonly OutboxEntry[], media: MediaCache): void {
  const chat = byTestId("chat");
  chat.hidden = view === undefined;
  if (view === undefined) return;
  const c = "conversationId" in view ? store.conversations.get(view.conversationId) : undefined;
  const title = c ? store.displayName(c) : "toUserId" in view ? view.toUserId : "";
  byTestId("chat-title").textContent = title;
  byTestId("presence").textContent = c ? presenceLine(store, c) : "";
  const typing = c ? store.typingNow(c) : [];
  byTestId("typing").textContent =
    typing.length === 0 ? "" : `${typing.join(", ")} ${typing.length === 1 ? "is" : "are"} typing…`;
  renderMembers(store, c);

  const held = c ? store.messages(c).map((m) => messageItem(store, c, m, media)) : [];
  const here = (e: OutboxEntry): boolean =>
    "conversationId" in view
      ? "conversationId" in e.target && e.target.conversationId === view.conversationId
      : "toUserId" in e.target && e.target.toUserId === view.toUserId;
  const failed = store.failed.filter((f) => here(f.entry)).map((f) => pendingItem(f.entry, f.reason));
  const mine = outbox.filter(here).map((e) => pendingItem(e));
  const list = byTestId("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...held, ...failed, ...mine);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function presenceLine(store: Store, c: Conversation): string {
  return c.members
    .filter((u) => u !== store.me)
    .map((u) => {
      const p = store.presence.get(u);
      if (p === undefined) return `${u}: …`;
      if (p.status === PresenceStatus.ONLINE) return `${u}: online`;
      const seen = Number(p.lastSeenMs);
      return seen > 0 ? `${u}: last seen ${new Date(seen).toLocaleTimeString()}` : `${u}: offline`;
    })
    .join(" · ");
}

function renderMembers(store: Store, c: Conversation | undefined): void {
  const panel = byTestId("group-panel");
  panel.hidden = c === undefined || c.kind !== ConversationKind.GROUP;
  if (c === undefined || panel.hidden) return;
  const admin = c.admins.has(store.me);
  byTestId("group-members").replaceChildren(
    ...c.members.map((u) => {
      const remove = el("button", { testid: "member-remove", "data-user": u, title: `remove ${u}` }, "✕");
      remove.hidden = !admin || u === store.me;
      return el(
        "li",
        { testid: "member", "data-user": u },
        `${u}${c.admins.has(u) ? " (admin)" : ""}${store.isOnline(u) ? " ●" : ""} `,
        remove,
      );
    }),
  );
}

function messageItem(store: Store, c: Conversation, m: ChatMessage, media: MediaCache): HTMLElement {
  const own = m.sender === store.me;
  const item = el("li", {
    testid: "message",
    class: m.kind === MessageKind.SYSTEM ? "system" : own ? "own" : "other",
    "data-message-id": String(m.messageId),
    "data-client-msg-id": m.clientMsgId,
    "data-sender": m.sender,
  });
  if (!own && m.kind !== MessageKind.SYSTEM && c.kind === ConversationKind.GROUP) {
    item.append(el("div", { class: "sender" }, m.sender));
  }
  if (m.media) {
    const url = media.url(m.media.mediaId, c.id);
    const img = el("img", { testid: "message-image", alt: "image", "data-media-id": m.media.mediaId });
    if (m.media.width > 0) img.style.aspectRatio = `${m.media.width} / ${m.media.height}`;
    if (url !== undefined) {
      img.src = url;
      img.dataset.loaded = "true";
    }
    item.append(img);
  }
  if (m.text !== "") item.append(el("div", { class: "text", testid: "message-text" }, m.text));
  if (own && m.kind !== MessageKind.SYSTEM) item.append(receipt(store, c, m));
  return item;
}

function receipt(store: Store, c: Conversation, m: ChatMessage): HTMLElement {
  const others = c.members.filter((u) => u !== store.me);
  let state = "sent";
  let label = "";
  const counts = c.receipts.get(String(m.messageId));
  if (c.kind === ConversationKind.GROUP) {
    if (counts !== undefined && counts.recipients > 0) {
      if (counts.read >= counts.recipients) state = "read";
      else if (counts.delivered >= counts.recipients) state = "delivered";
      label = `read by ${counts.read} of ${counts.recipients}`;
    }
  } else if (others.length > 0) {
    const marks = others.map((u) => c.watermarks.get(u));
    if (marks.every((w) => w !== undefined && w.read >= m.messageId)) state = "read";
    else if (marks.every((w) => w !== undefined && w.delivered >= m.messageId)) state = "delivered";
  }
  const tick = el("span", { class: `tick ${state}`, testid: "tick", "data-state": state }, state === "sent" ? "✓" : "✓✓");
  const meta = el("div", { class: "meta" }, time(m.createdAtMs), " ", tick);
  if (label !== "") meta.append(" ", el("span", { class: "read-count", testid: "read-count" }, label));
  return meta;
}

/** A send not acknowledged yet, or refused for good when `failure` says why. */
function pendingItem(e: OutboxEntry, failure?: string): HTMLElement {
  const state = failure === undefined ? "pending" : "failed";
  const mark = failure === undefined ? "🕓" : `not sent: ${failure}`;
  return el(
    "li",
    { testid: "message", class: `own ${state}`, "data-client-msg-id": e.clientMsgId, "data-sender": "me" },
    el("div", { class: "text", testid: "message-text" }, e.media ? `📷 ${e.body}`.trim() : e.body),
    el("div", { class: "meta" }, time(e.createdAtMs), " ", el("span", { class: `tick ${state}`, testid: "tick", "data-state": state }, mark)),
  );
}

function time(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
