// Frames on the wire: binary protobuf both ways (the server answers in the
// encoding of the client's latest frame, and the page never sends text).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ClientFrameSchema,
  ServerFrameSchema,
  type ClientFrame,
  type ServerFrame,
} from "./gen/chatmesh/v1/client_pb";

export type ClientKind = ClientFrame["kind"];

let nextRequest = 0;

/** A fresh request id, unique for this page load. */
export function requestId(): string {
  nextRequest += 1;
  return `r${nextRequest}`;
}

export function encode(kind: ClientKind, id: string = requestId()): Uint8Array {
  return toBinary(ClientFrameSchema, create(ClientFrameSchema, { requestId: id, kind }));
}

/**
 * A frame of a kind this page does not know (a newer server) decodes with
 * `kind.case` undefined and its field kept as unknown: callers ignore it.
 */
export function decode(bytes: Uint8Array): ServerFrame | undefined {
  try {
    return fromBinary(ServerFrameSchema, bytes);
  } catch {
    return undefined;
  }
}
