// The one way the app talks to the API: openapi-fetch typed by the generated schema, plus
// ApiError (the server's error envelope, or a stand-in for a network failure) and `call`, which
// turns a typed result into its data or a thrown ApiError.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type ApiClient = Client<paths>;

/** Every error code the API declares: the union of its `*ErrorCode` enums (one per backend app). */
export type ErrorCode = Schemas[Extract<keyof Schemas, `${string}ErrorCode`>];

export interface ApiOptions {
  /** Origin of the API, "" for the app's own (paths in the schema carry /api/v1). */
  baseUrl?: string;
  fetch?: (request: Request) => Promise<Response>;
}

export function createApi({ baseUrl = "", fetch }: ApiOptions = {}): ApiClient {
  // Look fetch up per call (not once here) so a test can stub globalThis.fetch at any time.
  return createClient<paths>({ baseUrl, fetch: fetch ?? ((request) => globalThis.fetch(request)) });
}

export const NETWORK_ERROR = "network_error";
/** A failure inside the app (an exception that is not an ApiError), told like an API error. */
export const CLIENT_ERROR = "client_error";

/** An API code, or the app's stand-ins for no answer, an answer that is not the envelope, or its own failure.
 * A closed union on purpose: comparing `code` with a literal that is none of these fails `npm run typecheck`. */
export type ApiErrorCode = ErrorCode | typeof NETWORK_ERROR | typeof CLIENT_ERROR | `http_${number}`;

/** An API failure as the user should see it: `message` is always fit to show. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly details: unknown;

  constructor(status: number, code: ApiErrorCode, message: string, details: unknown = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// Only the shape is checked, not the code: a server newer than this page may answer a code it does
// not know yet, which errorText (i18n/errors.ts) tells with a generic message.
function isEnvelope(body: unknown): body is { code: ErrorCode; message: string; details?: unknown } {
  return (
    typeof body === "object" &&
    body !== null &&
    typeof (body as { code?: unknown }).code === "string" &&
    typeof (body as { message?: unknown }).message === "string"
  );
}

export function toApiError(body: unknown, response: Response): ApiError {
  if (isEnvelope(body)) return new ApiError(response.status, body.code, body.message, body.details ?? null);
  // Not our envelope: a proxy's error page, a gateway timeout, an empty body.
  return new ApiError(response.status, `http_${response.status}` as const, `The server answered HTTP ${response.status}. Please try again.`);
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/** Awaits a typed call; returns its data, or throws an ApiError carrying the envelope's message. */
export async function call<T>(request: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await request;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(0, NETWORK_ERROR, "Could not reach the server. Check your connection and try again.");
  }
  if (!result.response.ok) throw toApiError(result.error, result.response);
  return result.data as T;
}

/** What to show for any error: the API's message, or something readable for the rest. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong. Please try again.";
}

export interface TokenSource {
  /** A valid access token (refreshed first when it is about to expire), or null when logged out. */
  accessToken(): Promise<string | null>;
  /** The server refused our token: drop the session and send the user to log in. */
  unauthorized(): void;
}

const PUBLIC_PATHS = /^\/api\/v1\/(auth\/|health$)/;

/** Adds the bearer token to every call but the public auth ones; a 401 ends the session. */
export function authMiddleware(tokens: TokenSource): Middleware {
  return {
    async onRequest({ request, schemaPath }) {
      if (PUBLIC_PATHS.test(schemaPath)) return undefined;
      const token = await tokens.accessToken();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
    onResponse({ response, schemaPath }) {
      if (response.status === 401 && !PUBLIC_PATHS.test(schemaPath)) tokens.unauthorized();
      return undefined;
    },
  };
}

/** Turns a picture URL from the API ("/static/...") into one the browser can load. */
export function apiAssetUrl(url: string, baseUrl: string): string {
  return url.startsWith("/") && !url.startsWith("//") ? baseUrl + url : url;
}
