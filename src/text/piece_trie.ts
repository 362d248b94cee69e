/**
 * A byte trie over the UTF-8 encodings of the matchable pieces, walked one byte at a time by the Viterbi encoder
 * (the role of SentencePiece's Darts double-array trie). Children of the root sit in a dense 256-entry table;
 * deeper edges live in one open-addressing hash table keyed by `(node, byte)`.
 *
 * @module
 */

/** Byte trie mapping piece encodings to piece ids. */
export class PieceTrie {
  /** Child of the root for each first byte, or −1. */
  readonly rootChildren: Int32Array = new Int32Array(256).fill(-1);
  /** Piece id ending at each node, or −1. Node 0 is the root. */
  readonly values: Int32Array;
  #keys: Int32Array;
  #children: Int32Array;
  #mask: number;
  #shift: number;

  /**
   * @param entries `[utf8Bytes, id]` pairs; the byte strings must be distinct and non-empty, and their total
   *   length below 2^23 (so that `node * 256 + byte` fits an int32)
   */
  constructor(entries: Iterable<[Uint8Array, number]>) {
    const list = [...entries];
    let edgeBound = 0;
    for (const [bytes] of list) edgeBound += bytes.length;
    const values = new Int32Array(edgeBound + 1).fill(-1);
    let capacity = 16;
    let bits = 4;
    while (capacity < edgeBound * 2) {
      capacity *= 2;
      bits++;
    }
    this.#shift = 32 - bits;
    this.#keys = new Int32Array(capacity).fill(-1);
    this.#children = new Int32Array(capacity);
    this.#mask = capacity - 1;
    let nodeCount = 1;
    for (const [bytes, id] of list) {
      let node = 0;
      for (const b of bytes) {
        let child = this.child(node, b);
        if (child < 0) {
          child = nodeCount++;
          if (node === 0) this.rootChildren[b] = child;
          else this.#insert(node, b, child);
        }
        node = child;
      }
      values[node] = id;
    }
    this.values = values.subarray(0, nodeCount);
  }

  /** The node reached from `node` by `byte`, or −1. */
  child(node: number, byte: number): number {
    if (node === 0) return this.rootChildren[byte];
    const key = node * 256 + byte;
    let slot = Math.imul(key, 0x9e3779b1) >>> this.#shift;
    for (;;) {
      const k = this.#keys[slot];
      if (k === key) return this.#children[slot];
      if (k === -1) return -1;
      slot = (slot + 1) & this.#mask;
    }
  }

  #insert(node: number, byte: number, child: number): void {
    const key = node * 256 + byte;
    let slot = Math.imul(key, 0x9e3779b1) >>> this.#shift;
    while (this.#keys[slot] !== -1) slot = (slot + 1) & this.#mask;
    this.#keys[slot] = key;
    this.#children[slot] = child;
  }
}
