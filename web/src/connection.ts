// One WebSocket to the edge at a time, reopened with jittered backoff. Knows
// nothing of chat: it hands frames up and reports its state for the banner.
import type { HelloFrame, ServerFrame } from "./gen/chatmesh/v1/client_pb";
import { decode, encode, type ClientKind } from "./wire";

export type ConnState =
  | { readonly kind: "connecting" }
  | { readonly kind: "online"; readonly gatewayId: string }
  | { readonly kind: "offline"; readonly retryAtMs: number; readonly reason: string };

export interface ConnectionEvents {
  state(state: ConnState): void;
  /** The hello arrived: the connection is usable. */
  open(hello: HelloFrame): void;
  frame(frame: ServerFrame): void;
}

/** Gives a token; `fresh` asks for a new one (the last was refused or expired). */
export type TokenSource = (fresh: boolean) => Promise<string>;

const BACKOFF_BASE_MS = 300;
const BACKOFF_MAX_MS = 5000;
// The gateway's close code for a token that expired on an open connection.
const CLOSE_TOKEN_EXPIRED = 4002;
// Gateway restart: everyone reconnects, so spread the herd over a few seconds.
const CLOSE_SERVICE_RESTART = 1012;
const PING_INTERVAL_MS = 10_000;
// No frame at all (pongs included) for this long: the path is dead even if
// the socket has not noticed.
const SILENCE_LIMIT_MS = 25_000;

export class Connection {
  private ws: WebSocket | undefined;
  private failures = 0;
  private freshToken = false;
  private lastFrameAt = 0;
  private pinger: number | undefined;

  constructor(
    private readonly url: string,
    private readonly tokens: TokenSource,
    private readonly events: ConnectionEvents,
  ) {}

  start(): void {
    void this.attempt();
  }

  /** Sends if a connection is open; false when the frame was not written. */
  send(kind: ClientKind, requestId?: string): boolean {
    const ws = this.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(encode(kind, requestId));
    return true;
  }

  private async attempt(): Promise<void> {
    this.events.state({ kind: "connecting" });
    let token: string;
    try {
      token = await this.tokens(this.freshToken);
      this.freshToken = false;
    } catch (err) {
      this.retry(`can't reach the server (${String(err)})`, undefined);
      return;
    }
    const ws = new WebSocket(`${this.url}?access_token=${encodeURIComponent(token)}&encoding=binary`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    let helloSeen = false;
    ws.onmessage = (event: MessageEvent) => {
      if (!(event.data instanceof ArrayBuffer)) return;
      const frame = decode(new Uint8Array(event.data));
      this.lastFrameAt = Date.now();
      if (frame === undefined) return;
      if (frame.kind.case === "hello" && !helloSeen) {
        helloSeen = true;
        this.failures = 0;
        this.events.state({ kind: "online", gatewayId: frame.kind.value.gatewayId });
        this.events.open(frame.kind.value);
        return;
      }
      this.events.frame(frame);
    };
    ws.onopen = () => {
      this.lastFrameAt = Date.now();
      this.pinger = window.setInterval(() => this.keepAlive(ws), PING_INTERVAL_MS);
    };
    ws.onclose = (event: CloseEvent) => {
      window.clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = undefined;
      // A browser hides the handshake's status: a refusal before the hello
      // may be a 401 for an expired token, so the next attempt gets a new one.
      if (event.code === CLOSE_TOKEN_EXPIRED || !helloSeen) this.freshToken = true;
      const reason = helloSeen ? `connection closed (${event.code})` : "can't reach the server";
      const delay = event.code === CLOSE_SERVICE_RESTART ? 500 + Math.random() * 1500 : undefined;
      this.retry(reason, delay);
    };
  }

  private keepAlive(ws: WebSocket): void {
    if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
      ws.close();
      return;
    }
    this.send({ case: "ping", value: { $typeName: "chatmesh.v1.PingFrame", clientTimeMs: BigInt(Date.now()) } });
  }

  private retry(reason: string, delayMs: number | undefined): void {
    this.failures += 1;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.failures - 1));
    const wait = delayMs ?? ceiling * (0.5 + Math.random() / 2);
    this.events.state({ kind: "offline", retryAtMs: Date.now() + wait, reason });
    window.setTimeout(() => void this.attempt(), wait);
  }
}
