// Sending one file to S3 through the API's presigned URLs: a single PUT, or a multipart upload
// (parts sent as application/octet-stream, each part's ETag read from S3's answer, then
// completed through the API). XMLHttpRequest, because fetch reports no upload progress.
import { type Api, type Schemas, unwrap } from "@/lib/api";

export const MULTIPART_FROM = 16 * 1024 * 1024; // bytes: larger files go in parts (S3 parts >= 5 MiB)
const PART_URL_PAGE = 1000;

type Upload = Schemas["Upload"];

export class TransferError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** PUT ``body`` to a presigned URL; resolves with the response's ETag. */
function put(url: string, body: Blob, headers: Record<string, string>, onProgress: (sent: number) => void, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.getResponseHeader("ETag") ?? "");
      else reject(new TransferError(xhr.status, xhr.responseText.slice(0, 300) || xhr.statusText));
    };
    xhr.onerror = () => reject(new TransferError(0, "network"));
    xhr.onabort = () => reject(new TransferError(0, "aborted"));
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

export interface TransferOptions {
  api: Api;
  projectId: string;
  file: File;
  filename: string;
  onProgress: (sentBytes: number) => void;
  signal: AbortSignal;
}

/** Upload ``file`` as ``filename`` (folders kept); resolves with the object's key and its kind. */
export async function transfer({ api, projectId, file, filename, onProgress, signal }: TransferOptions): Promise<{ key: string; kind: string }> {
  const path = { project_id: projectId };
  const contentType = file.type || "application/octet-stream";
  const multipart = file.size >= MULTIPART_FROM;
  const upload: Upload = await unwrap(api.POST("/projects/{project_id}/uploads", { params: { path }, body: { filename, content_type: contentType, size: file.size, multipart } }));
  if (!upload.upload_id) {
    await put(upload.url ?? "", file, upload.headers ?? {}, onProgress, signal);
    onProgress(file.size);
    return { key: upload.key, kind: upload.kind };
  }
  const partSize = upload.part_size ?? file.size;
  const count = upload.part_count ?? 1;
  const urls = [...(upload.part_urls ?? [])];
  const sent = new Array<number>(count).fill(0);
  const parts: Schemas["Part"][] = [];
  for (let number = 1; number <= count; number++) {
    if (urls.length < number) {
      const more = await unwrap(api.POST("/projects/{project_id}/uploads/parts", { params: { path }, body: { key: upload.key, upload_id: upload.upload_id, first_part: number, count: Math.min(PART_URL_PAGE, count - number + 1) } }));
      urls.push(...more.part_urls);
    }
    const blob = file.slice((number - 1) * partSize, Math.min(file.size, number * partSize));
    const etag = await put(urls[number - 1], blob, { "Content-Type": "application/octet-stream" }, (n) => {
      sent[number - 1] = n;
      onProgress(sent.reduce((a, b) => a + b, 0));
    }, signal);
    if (!etag) throw new TransferError(0, "S3 did not expose the part's ETag (bucket CORS)");
    parts.push({ part_number: number, etag });
  }
  await unwrap(api.POST("/projects/{project_id}/uploads/complete", { params: { path }, body: { key: upload.key, upload_id: upload.upload_id, parts } }));
  onProgress(file.size);
  return { key: upload.key, kind: upload.kind };
}

/** Every file of a drop, folders walked (their relative paths kept as the object names). */
export async function droppedFiles(items: DataTransferItemList): Promise<{ file: File; path: string }[]> {
  const entries = [...items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => Boolean(e));
  const out: { file: File; path: string }[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      out.push({ file, path: prefix + entry.name });
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const entry of entries) await walk(entry, "");
  return out;
}
