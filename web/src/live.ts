// An order, live: GET /orders/{id}/events (Server-Sent Events) read with fetch, so the request
// carries the token (EventSource cannot). The server pushes the whole order after each step of
// its saga; after a drop, fetch-event-source reconnects with Last-Event-ID and misses nothing.
// A stream lives as long as its token: the server ends it with an `error` event once the token
// expires or is revoked, and the page says so instead of reconnecting.
import { fetchEventSource } from "@microsoft/fetch-event-source";
import { useEffect, useState } from "react";
import { API_BASE, token, type Order } from "./api/client";

export type Live = { order: Order | null; connected: boolean; error: string | null };

class Fatal extends Error {}

export function useLiveOrder(orderId: string): Live {
  const [state, setState] = useState<Live>({ order: null, connected: false, error: null });

  useEffect(() => {
    const stop = new AbortController();
    setState({ order: null, connected: false, error: null });
    void fetchEventSource(`${API_BASE}/orders/${encodeURIComponent(orderId)}/events`, {
      signal: stop.signal,
      headers: { Authorization: `Bearer ${token() ?? ""}` },
      openWhenHidden: true,
      async onopen(response) {
        if (response.ok) {
          setState((s) => ({ ...s, connected: true, error: null }));
          return;
        }
        const body = await response.json().catch(() => null);
        const message = body?.error?.message ?? `The shop answered ${response.status}.`;
        if (response.status >= 400 && response.status < 500 && response.status !== 429) {
          throw new Fatal(message);
        }
        throw new Error(message); // retried
      },
      onmessage(message) {
        if (message.event === "order") {
          setState({ order: JSON.parse(message.data) as Order, connected: true, error: null });
        } else if (message.event === "error") {
          // The server ended the stream for good: the token expired or was revoked (a new
          // password, a deactivation, a deletion). A reconnect would be refused too.
          const body = JSON.parse(message.data) as { error?: { message?: string } };
          throw new Fatal(body.error?.message ?? "The shop ended this page's updates.");
        }
      },
      onclose() {
        setState((s) => ({ ...s, connected: false }));
        throw new Error("closed"); // the server ended it (a restart): reconnect
      },
      onerror(error) {
        if (error instanceof Fatal) {
          setState((s) => ({ ...s, connected: false, error: error.message }));
          throw error; // stop
        }
        setState((s) => ({ ...s, connected: false }));
        return 2000; // retry in 2 s
      },
    }).catch(() => undefined);
    return () => stop.abort();
  }, [orderId]);

  return state;
}
