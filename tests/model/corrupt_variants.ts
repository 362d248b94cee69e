/**
 * Corrupt variants of a valid safetensors file, built by editing its header or cutting its bytes. Shared by the
 * safetensors reader tests and the `info` command tests. Each variant states which error message fragment (and
 * which tensor, when one is at fault) a correct validator must report.
 */

/** One corrupt file and what its error must say. */
export interface CorruptVariant {
  /** Short name of the defect. */
  name: string;
  /** The corrupt file. */
  bytes: Uint8Array;
  /** A fragment the error message must contain. */
  expect: RegExp;
  /** The tensor the error must name, when one is at fault. */
  tensor?: string;
  /** True when the header itself is fine and only the config comparison can find the defect. */
  needsConfig?: boolean;
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function splitFile(bytes: Uint8Array): { header: Record<string, Entry>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, data: bytes.subarray(8 + n) };
}

/** Assemble a file from a header object (serialized as given, padded to 8) and a data section. */
export function assemble(header: unknown, data: Uint8Array, rawJson?: string): Uint8Array {
  let json = rawJson ?? JSON.stringify(header);
  while (json.length % 8) json += " ";
  const j = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + j.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(j.length), true);
  out.set(j, 8);
  out.set(data, 8 + j.length);
  return out;
}

/**
 * Corrupt variants of `valid` (a checkpoint whose tensors include `victim`, a 1-D or larger BF16 tensor that is not
 * the last in the file, and `neighbor`, the tensor stored right after it).
 */
export function corruptVariants(valid: Uint8Array): CorruptVariant[] {
  const { header, data } = splitFile(valid);
  const names = Object.keys(header).filter((k) => k !== "__metadata__").sort((a, b) =>
    header[a].data_offsets[0] - header[b].data_offsets[0]
  );
  const victim = names[1];
  const neighbor = names[2];
  const last = names[names.length - 1];
  const clone = () => JSON.parse(JSON.stringify(header)) as Record<string, Entry>;
  const variants: CorruptVariant[] = [];

  variants.push({
    name: "truncated file",
    bytes: valid.slice(0, valid.length - 1000),
    expect: /beyond the end of the data section.*truncated/,
    tensor: last,
  });

  const hugeLen = valid.slice();
  new DataView(hugeLen.buffer).setBigUint64(0, BigInt(valid.length * 2), true);
  variants.push({ name: "header length beyond the file", bytes: hugeLen, expect: /header length \d+ goes beyond/ });

  const j = JSON.stringify(header);
  variants.push({
    name: "bad JSON",
    bytes: assemble(null, data, j.slice(0, j.length - 1) + ","),
    expect: /not valid JSON/,
  });

  const ov = clone();
  ov[neighbor].data_offsets = [ov[neighbor].data_offsets[0] - 2, ov[neighbor].data_offsets[1] - 2];
  variants.push({ name: "overlapping ranges", bytes: assemble(ov, data), expect: /overlap/, tensor: neighbor });

  const dt = clone();
  dt[victim].dtype = "Q4_0";
  variants.push({
    name: "unsupported dtype",
    bytes: assemble(dt, data),
    expect: /unsupported dtype "Q4_0"/,
    tensor: victim,
  });

  const sh = clone();
  sh[victim].shape = [...sh[victim].shape.slice(0, -1), sh[victim].shape[sh[victim].shape.length - 1] + 1];
  variants.push({
    name: "shape/size mismatch",
    bytes: assemble(sh, data),
    expect: /needs \d+ bytes but data_offsets/,
    tensor: victim,
  });

  // Same byte size, different dtype: valid as a file, wrong for a model (I16 instead of BF16).
  const wd = clone();
  wd[victim].dtype = "I16";
  variants.push({
    name: "integer dtype",
    bytes: assemble(wd, data),
    expect: /dtype I16/,
    tensor: victim,
    needsConfig: true,
  });

  // Missing tensor: drop the last tensor and its bytes.
  const ms = clone();
  const lastRange = ms[last].data_offsets;
  delete ms[last];
  variants.push({
    name: "missing tensor",
    bytes: assemble(ms, data.subarray(0, lastRange[0])),
    expect: /missing tensor/,
    tensor: last,
    needsConfig: true,
  });

  // Extra tensor: append one.
  const ex = clone();
  ex["flow_lm.extra_tensor"] = { dtype: "BF16", shape: [2], data_offsets: [data.length, data.length + 4] };
  const data2 = new Uint8Array(data.length + 4);
  data2.set(data);
  variants.push({
    name: "extra tensor",
    bytes: assemble(ex, data2),
    expect: /unexpected tensor/,
    tensor: "flow_lm.extra_tensor",
    needsConfig: true,
  });

  // Shape that fits the bytes but not the config: transpose a 2-D tensor's shape.
  const two = names.find((n) => header[n].shape.length === 2 && header[n].shape[0] !== header[n].shape[1])!;
  const tr = clone();
  tr[two].shape = [...tr[two].shape].reverse();
  variants.push({
    name: "shape disagrees with the config",
    bytes: assemble(tr, data),
    expect: new RegExp(`expected shape \\[${header[two].shape.join(", ")}\\].*got \\[${tr[two].shape.join(", ")}\\]`),
    tensor: two,
    needsConfig: true,
  });
  return variants;
}
