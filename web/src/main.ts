// Wires the page: the dev login, the connection, the chat client and views.
import { ChatClient } from "./client";
import { Connection } from "./connection";
import { MediaCache, uploadImage } from "./media";
import { Outbox, type Target } from "./outbox";
import { Store } from "./store";
import { fetchDevToken } from "./token";
import { byTestId, renderChat, renderList, renderState, type View } from "./views";

const USER_KEY = "chatmesh:user";
const DEVICE_KEY = "chatmesh:device";
const DEFAULT_TTL_S = 3600;

function start(userId: string): void {
  byTestId("login").hidden = true;
  byTestId("app").hidden = false;
  byTestId("me").textContent = userId;
  let deviceId = localStorage.getItem(DEVICE_KEY);
  if (deviceId === null) {
    // One device per browser profile: its sends' ids and receipts are its own.
    deviceId = `web-${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem(DEVICE_KEY, deviceId);
  }
  // ?ttl=N asks for short-lived tokens (to see expiry handled).
  const ttlS = Number(new URLSearchParams(location.search).get("ttl") ?? DEFAULT_TTL_S);
  let token: string | undefined;
  const tokens = async (fresh: boolean): Promise<string> => {
    if (fresh || token === undefined) token = (await fetchDevToken(userId, deviceId, ttlS)).token;
    return token;
  };

  let view: View;
  let queued = false;
  const render = (): void => {
    if (queued) return;
    queued = true;
    // A microtask, not an animation frame: background tabs get no frames,
    // and their titles, unread counts and receipts must still be current.
    queueMicrotask(() => {
      queued = false;
      adopt();
      renderList(store, open);
      renderChat(store, view, outbox.all(), media);
    });
  };
  const store = new Store(userId, render);
  const outbox = new Outbox(`chatmesh:${userId}:${deviceId}:outbox`);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let client: ChatClient;
  const conn = new Connection(`${scheme}://${location.host}/`, tokens, {
    state: (s) => renderState(s),
    open: () => client.connected(),
    frame: (f) => client.receive(f),
  });
  client = new ChatClient(conn, store, outbox, `chatmesh:${userId}:${deviceId}:cursor`);
  const media = new MediaCache(client, render);

  const open = (conversationId: string): void => {
    view = { conversationId };
    store.openId = conversationId;
    client.loadHistory(conversationId);
    client.markSeen(conversationId);
    render();
  };
  const target = (): Target | undefined =>
    view === undefined ? undefined : "conversationId" in view ? { conversationId: view.conversationId } : { toUserId: view.toUserId };

  // A 1:1 chat opened by user name becomes its conversation once known
  // (the first send's ack, or the list).
  const adopt = (): void => {
    if (view === undefined || !("toUserId" in view)) return;
    const id = store.directWith.get(view.toUserId);
    if (id !== undefined) open(id);
  };

  byTestId("new-chat").onsubmit = (event) => {
    event.preventDefault();
    const input = byTestId<HTMLInputElement>("new-chat-user");
    const peer = input.value.trim();
    if (peer === "" || peer === userId) return;
    input.value = "";
    store.openId = undefined;
    view = { toUserId: peer };
    adopt();
    render();
  };
  byTestId("new-group").onsubmit = (event) => {
    event.preventDefault();
    const title = byTestId<HTMLInputElement>("group-title");
    const members = byTestId<HTMLInputElement>("group-members-input");
    const names = members.value.split(/[\s,]+/).filter((u) => u !== "" && u !== userId);
    client.createGroup(title.value.trim() || "Group", names, (id) => open(id));
    title.value = "";
    members.value = "";
  };
  byTestId("member-add-form").onsubmit = (event) => {
    event.preventDefault();
    const input = byTestId<HTMLInputElement>("member-add-input");
    const names = input.value.split(/[\s,]+/).filter((u) => u !== "");
    if (store.openId !== undefined && names.length > 0) client.changeMembers(store.openId, { add: names });
    input.value = "";
  };
  byTestId("group-members").onclick = (event) => {
    const button = (event.target as HTMLElement).closest<HTMLElement>('[data-testid="member-remove"]');
    if (button?.dataset.user && store.openId !== undefined) client.changeMembers(store.openId, { remove: button.dataset.user });
  };
  const composer = byTestId<HTMLInputElement>("composer");
  composer.oninput = () => {
    if (view !== undefined && "conversationId" in view) client.typed(view.conversationId);
  };
  byTestId("composer-form").onsubmit = (event) => {
    event.preventDefault();
    const to = target();
    const text = composer.value.trim();
    if (to === undefined || text === "") return;
    client.send(to, text);
    composer.value = "";
    render();
  };
  byTestId<HTMLInputElement>("attach").onchange = async (event) => {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    const to = target();
    input.value = "";
    if (file === undefined || to === undefined) return;
    const status = byTestId("upload-status");
    status.textContent = `uploading ${file.name}…`;
    try {
      const media = await uploadImage(client, file);
      client.send(to, composer.value.trim(), media);
      composer.value = "";
      status.textContent = "";
    } catch (err) {
      status.textContent = `upload failed: ${String(err)}`;
    }
  };
  document.addEventListener("visibilitychange", () => {
    if (store.openId !== undefined) client.markSeen(store.openId);
  });
  byTestId("logout").onclick = () => {
    localStorage.removeItem(USER_KEY);
    location.reload();
  };
  conn.start();
  render();
}

function main(): void {
  const remembered = localStorage.getItem(USER_KEY);
  if (remembered !== null) {
    start(remembered);
    return;
  }
  byTestId("login").onsubmit = (event) => {
    event.preventDefault();
    const name = byTestId<HTMLInputElement>("login-name").value.trim();
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
      byTestId("login-error").textContent = "letters, digits, . _ - (up to 64)";
      return;
    }
    localStorage.setItem(USER_KEY, name);
    start(name);
  };
}

main();
