// The system at a glance: each service's readiness, its queue and its parked messages (with
// their errors; replay one or all), and the PENDING order waiting longest.
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { ok, orders, serviceAdmin, SERVICES } from "../../api/client";
import type { components } from "../../api/types/notifications";
import type { components as OrderComponents } from "../../api/types/orders";
import { Problem, Table, useAction, useTitle } from "../common";
import { Staff } from "./Staff";

type Status = components["schemas"]["ServiceStatus"];
type Overview = OrderComponents["schemas"]["OrdersOverview"];
type Found = { service: string; status?: Status; error?: unknown };

export function AdminHealth() {
  useTitle("Back office: health");
  return (
    <Staff title="Health">
      <Health />
    </Staff>
  );
}

function Health() {
  const [found, setFound] = useState<Found[] | null>(null);
  const [overview, setOverview] = useState<Overview | null>(null);
  const [error, setError] = useState<unknown>(null);
  const replaying = useAction();

  const load = useCallback(async () => {
    const answers = await Promise.all(
      SERVICES.map(async (service): Promise<Found> => {
        try {
          return { service, status: await ok(serviceAdmin(service).GET("/admin/status")) };
        } catch (problem) {
          return { service, error: problem };
        }
      }),
    );
    setFound(answers);
    ok(orders.GET("/orders/overview")).then(setOverview, setError);
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  function replay(service: string, messageId?: string) {
    void replaying.run(async () => {
      await ok(
        serviceAdmin(service).POST("/admin/parked/replay", { body: { messageId: messageId ?? null } }),
      );
      await load();
    });
  }

  if (!found) return <p aria-busy="true">Asking every service…</p>;
  const oldest = overview?.oldestPending;
  return (
    <>
      <Problem error={error} />
      <Problem error={replaying.error} />
      {overview && (
        <p>
          Orders: {Object.entries(overview.counts).map(([status, n]) => `${n} ${status}`).join(", ")}.{" "}
          {oldest ? (
            <>
              Oldest PENDING: <Link to={`/admin/orders/${oldest.id}`}>{oldest.id.slice(0, 8)}</Link>, placed{" "}
              {new Date(oldest.createdAt).toLocaleString()}.
            </>
          ) : (
            "No order is PENDING."
          )}
        </p>
      )}
      <Table caption="Services" columns={["Service", "Ready", "Waiting", "Consumers", "Parked"]}>
        {found.map(({ service, status, error: problem }) => (
          <tr key={service}>
            <th scope="row">{service}</th>
            <td>
              {status
                ? status.ready
                  ? "ready"
                  : Object.entries(status.checks)
                      .filter(([, state]) => state !== "ok")
                      .map(([name, state]) => `${name}: ${state}`)
                      .join("; ")
                : problem instanceof Error
                  ? problem.message
                  : "no answer"}
            </td>
            <td>{status?.queue ? status.queue.messages : "no queue"}</td>
            <td>{status?.queue ? status.queue.consumers : ""}</td>
            <td data-testid={`parked-${service}`}>{status?.queue ? status.queue.parked : ""}</td>
          </tr>
        ))}
      </Table>
      {found
        .filter(({ status }) => status && status.parked.length > 0)
        .map(({ service, status }) => (
          <section key={service} aria-labelledby={`parked-${service}-title`}>
            <h2 id={`parked-${service}-title`}>Parked in {service}</h2>
            <button type="button" disabled={replaying.busy} onClick={() => replay(service)}>
              Replay all of {service}
            </button>
            <Table caption={`Messages parked in ${service}`} hideCaption columns={["Event", "Attempts", "Error", ""]}>
              {status!.parked.map((message) => (
                <tr key={message.messageId ?? message.body}>
                  <td>{message.eventType}</td>
                  <td>{message.attempts}</td>
                  <td>{message.error}</td>
                  <td>
                    {message.messageId && (
                      <button
                        type="button"
                        className="link"
                        disabled={replaying.busy}
                        onClick={() => replay(service, message.messageId!)}
                      >
                        Replay<span className="visually-hidden"> {message.messageId}</span>
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </Table>
          </section>
        ))}
    </>
  );
}
