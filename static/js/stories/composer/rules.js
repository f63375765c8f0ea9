// The composer's decisions as plain functions (no DOM, no I/O): which kind to open with,
// what a file input accepts, what is wrong with a file before it is uploaded, and the
// words the composer shows.

export const KINDS = [
  { id: 'text', label: 'Text' },
  { id: 'photo', label: 'Photo' },
  { id: 'video', label: 'Video' },
];

/** The kind asked for in the query (`/compose?kind=video`), text by default. */
export function initialKind(asked) {
  return KINDS.some((k) => k.id === asked) ? asked : 'text';
}

/** "812 KB", "2.5 MB", "25 MB". */
export function megabytes(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MB`;
}

/** The file input's `accept` for a kind, from the server's config when it says. */
export function acceptFor(kind, cfg) {
  return (kind === 'photo' ? cfg.image_types || ['image/*'] : cfg.video_types || ['video/*']).join(',');
}

/** Whether a file of MIME type `type` suits a media kind. */
export function fitsKind(type, kind) {
  return type.startsWith(kind === 'photo' ? 'image/' : 'video/');
}

/** Why a file is too big to upload, or null. */
export function sizeProblem(size, cfg) {
  if (size <= cfg.max_upload_bytes) return null;
  return `This file is ${megabytes(size)}; the limit is ${megabytes(cfg.max_upload_bytes)}.`;
}

/** Why a video is too long for a story, or null. */
export function lengthProblem(seconds, cfg) {
  if (!(seconds > cfg.max_video_seconds)) return null;
  return `This video is ${Math.round(seconds)} s long; stories take up to ${cfg.max_video_seconds} s.`;
}

/** What is missing before a story can be shared, or null. */
export function missingProblem(kind, { text, file }) {
  if (kind === 'text') return text ? null : 'Write something first.';
  if (file) return null;
  return kind === 'photo' ? 'Choose a photo first.' : 'Choose a video first.';
}

/** The counter under the text: characters left, and whether to warn. */
export function charactersLeft(max, length) {
  const left = max - length;
  return { text: `${left} characters left`, warn: left < 20 };
}

export const chooseLabel = (kind) => (kind === 'photo' ? ' Choose photo' : ' Choose video');
export const noneChosen = (kind) => (kind === 'photo' ? 'No photo chosen' : 'No video chosen');

/** The multipart fields of a media story besides the file: caption when given, options. */
export function mediaFields(caption, options) {
  const fields = caption ? [['caption', caption]] : [];
  return fields.concat(Object.entries(options).map(([k, v]) => [k, String(v)]));
}
