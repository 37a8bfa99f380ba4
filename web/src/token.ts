// Dev tokens from the local cluster's /dev/token (same origin as the page).

export interface Token {
  readonly token: string;
  readonly userId: string;
  readonly deviceId: string;
}

export class TokenUnavailable extends Error {}

export async function fetchDevToken(userId: string, deviceId: string, ttlS: number): Promise<Token> {
  let response: Response;
  try {
    response = await fetch("/dev/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: userId, device_id: deviceId, ttl_s: ttlS }),
    });
  } catch (err) {
    throw new TokenUnavailable(`token endpoint unreachable: ${String(err)}`);
  }
  if (!response.ok) {
    throw new TokenUnavailable(`token endpoint answered ${response.status}`);
  }
  const body = (await response.json()) as { token: string; user_id: string; device_id: string };
  return { token: body.token, userId: body.user_id, deviceId: body.device_id };
}
