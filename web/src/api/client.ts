// One typed client per service, generated types from their OpenAPI documents (api/types, by
// scripts/openapi.py), all through the gateway's /api/v1. Every call carries the customer's
// token when there is one.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths as CartPaths } from "./types/cart";
import type { paths as NotificationPaths } from "./types/notifications";
import type { components as OrderComponents, paths as OrderPaths } from "./types/orders";
import type { paths as PaymentPaths } from "./types/payments";
import type { components as ProductComponents, paths as ProductPaths } from "./types/products";
import type { paths as UserPaths } from "./types/users";

export type Product = ProductComponents["schemas"]["ProductOut"];
export type Category = ProductComponents["schemas"]["CategoryOut"];
export type Order = OrderComponents["schemas"]["OrderOut"];
export type ShippingAddress = OrderComponents["schemas"]["ShippingAddress"];

export const API_BASE = "/api/v1";
const TOKEN_KEY = "shop.accessToken";

export function token(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

const bearer: Middleware = {
  onRequest({ request }) {
    const current = token();
    if (current) request.headers.set("Authorization", `Bearer ${current}`);
    return request;
  },
};

function client<Paths extends {}>() {
  const made = createClient<Paths>({ baseUrl: API_BASE });
  made.use(bearer);
  return made;
}

export const users = client<UserPaths>();
export const products = client<ProductPaths>();
export const cart = client<CartPaths>();
export const orders = client<OrderPaths>();
export const payments = client<PaymentPaths>();

/** The services, as the gateway names them under /api/v1/services/<service>/admin/…. */
export const SERVICES = [
  "user_service",
  "product_service",
  "cart_service",
  "order_service",
  "payment_service",
  "notification_service",
] as const;

/** The back office's questions to one service (every service answers the same routes). */
export function serviceAdmin(service: string) {
  const made = createClient<NotificationPaths>({ baseUrl: `${API_BASE}/services/${service}` });
  made.use(bearer);
  return made;
}

/** The API's one error shape: {"error": {"code", "message", "details"}}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
  }
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The data of an answer, or an ApiError with the service's own message. */
export async function ok<T>(pending: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await pending;
  } catch {
    throw new ApiError(0, "network", "The shop cannot be reached. Check your connection.", null);
  }
  if (answer.response.ok) return answer.data as T;
  const body = answer.error as { error?: { code?: string; message?: string; details?: unknown } };
  const detail = body?.error;
  throw new ApiError(
    answer.response.status,
    detail?.code ?? "error",
    detail?.message ?? `The shop answered ${answer.response.status}.`,
    detail?.details ?? null,
  );
}
