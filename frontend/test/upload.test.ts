import { describe, expect, it, vi } from "vitest";
import { Session } from "@/lib/session";
import { createAuthStore } from "@/store/auth";
import { percent, signedUpload, uploadWithProgress, UPLOAD_TOKEN_MARGIN_MS, type UploadProgress, type XhrLike } from "@/lib/upload";

class FakeXhr implements XhrLike {
  upload: XhrLike["upload"] = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  status = 0;
  responseText = "";
  opened = "";
  headers: Record<string, string> = {};
  sent: FormData | null = null;
  open(method: string, url: string) {
    this.opened = `${method} ${url}`;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: FormData) {
    this.sent = body;
  }
  abort() {
    this.onabort?.();
  }
  answer(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

describe("upload with progress", () => {
  it("signs the request, sends the file as the 'file' part and reports progress to 100 %", async () => {
    const xhr = new FakeXhr();
    const seen: UploadProgress[] = [];
    const file = new Blob(["x".repeat(1000)]);
    const done = uploadWithProgress({
      url: "/api/v1/documents/documents/d1/versions",
      file,
      filename: "policy.pdf",
      token: "t0k",
      headers: { "Idempotency-Key": "k1" },
      onProgress: (p) => seen.push(p),
      xhr: () => xhr,
    });
    xhr.upload.onprogress?.({ loaded: 400, total: 1000, lengthComputable: true });
    expect(percent(seen.at(-1)!)).toBe(40);
    xhr.answer(201, { number: 1 });
    await expect(done).resolves.toEqual({ number: 1 });
    expect(xhr.opened).toBe("POST /api/v1/documents/documents/d1/versions");
    expect(xhr.headers).toEqual({ Authorization: "Bearer t0k", "Idempotency-Key": "k1" });
    expect((xhr.sent!.get("file") as File).name).toBe("policy.pdf");
    expect(percent(seen.at(-1)!)).toBe(100);
  });

  it("turns a refusal into its problem detail, and a cancel into an error", async () => {
    const refused = new FakeXhr();
    const a = uploadWithProgress({ url: "/u", file: new Blob(["x"]), filename: "a", token: null, xhr: () => refused });
    refused.answer(413, { title: "Too large", detail: "the file is larger than 25 MB" });
    await expect(a).rejects.toThrow("the file is larger than 25 MB");

    const controller = new AbortController();
    const cancelled = new FakeXhr();
    const b = uploadWithProgress({
      url: "/u", file: new Blob(["x"]), filename: "b", token: null, signal: controller.signal, xhr: () => cancelled,
    });
    controller.abort();
    await expect(b).rejects.toThrow("cancelled");
    expect(percent(null)).toBe(0);
  });
});

/** A session over a fake crm2 whose refresh hands out a2/r2, a3/r3 …, and the requests it saw. */
function sessionAt(now: () => number, expiresAt: number) {
  const data = new Map<string, string>();
  const store = createAuthStore({
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  });
  store.getState().setTokens({ accessToken: "a1", refreshToken: "r1", expiresAt });
  let generation = 1;
  const refreshes: string[] = [];
  const send = async (request: Request): Promise<Response> => {
    const { refresh_token } = (await request.json()) as { refresh_token: string };
    refreshes.push(refresh_token);
    generation += 1;
    return Response.json({ access_token: `a${generation}`, refresh_token: `r${generation}`, expires_in: 900 });
  };
  return { session: new Session(store, "http://crm2.test", send, now), refreshes };
}

describe("signed upload", () => {
  it("refreshes first when the access token would expire during a long upload", async () => {
    const now = 1_000_000;
    // 60 s left: plenty for a request, not for an upload that may take minutes
    const { session, refreshes } = sessionAt(() => now, now + 60_000);
    expect(UPLOAD_TOKEN_MARGIN_MS).toBeGreaterThan(60_000);
    const xhr = new FakeXhr();
    const done = signedUpload(session, { url: "/u", file: new Blob(["x"]), filename: "a", xhr: () => xhr });
    await vi.waitFor(() => expect(xhr.opened).toBe("POST /u"));
    expect(xhr.headers.Authorization).toBe("Bearer a2");
    expect(refreshes).toEqual(["r1"]);
    xhr.answer(201, { number: 1 });
    await expect(done).resolves.toEqual({ number: 1 });
  });

  it("sends the file again once, with a refreshed token, when the server answers 401 at its end", async () => {
    const now = 1_000_000;
    const { session, refreshes } = sessionAt(() => now, now + 600_000);
    const xhrs: FakeXhr[] = [];
    const file = new File(["%PDF-1.4 …"], "policy.pdf");
    const done = signedUpload(session, {
      url: "/u", file, filename: "policy.pdf", headers: { "Idempotency-Key": "k1" },
      xhr: () => {
        xhrs.push(new FakeXhr());
        return xhrs.at(-1)!;
      },
    });
    await vi.waitFor(() => expect(xhrs).toHaveLength(1));
    expect(xhrs[0]!.headers.Authorization).toBe("Bearer a1");
    xhrs[0]!.answer(401, { title: "Unauthorized", detail: "the access token has expired" });
    await vi.waitFor(() => expect(xhrs).toHaveLength(2));
    expect(refreshes).toEqual(["r1"]);
    expect(xhrs[1]!.headers).toEqual({ Authorization: "Bearer a2", "Idempotency-Key": "k1" });
    expect((xhrs[1]!.sent!.get("file") as File).size).toBe(file.size);
    xhrs[1]!.answer(201, { number: 2 });
    await expect(done).resolves.toEqual({ number: 2 });
  });

  it("gives up after one retry: a second 401 is the answer", async () => {
    const now = 1_000_000;
    const { session } = sessionAt(() => now, now + 600_000);
    const xhrs: FakeXhr[] = [];
    const done = signedUpload(session, {
      url: "/u", file: new Blob(["x"]), filename: "a",
      xhr: () => {
        xhrs.push(new FakeXhr());
        return xhrs.at(-1)!;
      },
    });
    await vi.waitFor(() => expect(xhrs).toHaveLength(1));
    xhrs[0]!.answer(401, { detail: "expired" });
    await vi.waitFor(() => expect(xhrs).toHaveLength(2));
    xhrs[1]!.answer(401, { detail: "still refused" });
    await expect(done).rejects.toThrow("still refused");
    expect(xhrs).toHaveLength(2);
  });
});
