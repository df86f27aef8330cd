import { describe, expect, it } from "vitest";
import { percent, uploadWithProgress, type UploadProgress, type XhrLike } from "@/lib/upload";

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
