// SFrame (RFC 9605, AES_128_GCM_SHA256_128) with WebCrypto, in the framing
// Parley's Rust client uses (client/src/call/e2ee.rs and group_e2ee.rs):
// whole Opus frames; H.264 with each NAL unit's header, SPS and PPS, and the
// first 4 bytes of a slice header in clear, the rest SFrame-encrypted with
// the clear bytes as metadata, escaped with H.264 emulation prevention and
// ended by 0x80. Keys of a demo room come from its passphrase.

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);
const CIPHER_SUITE = 0x0004; // AES_128_GCM_SHA256_128
const KEY_LEN = 16;
const NONCE_LEN = 12;
const CLEAR_SLICE_BYTES = 4;
const START_CODE = [0, 0, 0, 1];
const NAL_TRAILER = 0x80;

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function hkdf(ikm, salt, info, length) {
  const key = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt, info }, key, length * 8);
  return new Uint8Array(bits);
}

function u64be(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/// The shortest big-endian bytes of `n` (a BigInt), at least one.
function minBytes(n) {
  const out = [];
  do {
    out.unshift(Number(n & 0xffn));
    n >>= 8n;
  } while (n > 0n);
  return Uint8Array.from(out);
}

/// A sender's key in a demo room: group_e2ee::passphrase_key.
export async function passphraseSecret(passphrase, room, user, device) {
  const info = concat(enc.encode('parley demo sender v1'), [0], enc.encode(user), [0],
    enc.encode(device));
  return hkdf(enc.encode(passphrase), enc.encode(room), info, 32);
}

/// One SFrame key (key id, AES key, salt) for a sender's secret at an epoch.
export class SframeKey {
  static async derive(secret, room, epoch) {
    // group_e2ee::SenderKey::sframe_base, then RFC 9605 section 4.4.2.
    const base = await hkdf(secret, enc.encode(room), enc.encode('parley group sframe v1'), 32);
    const label = (what) => concat(enc.encode(`SFrame 1.0 ${what} `), u64be(epoch),
      [CIPHER_SUITE >> 8, CIPHER_SUITE & 0xff]);
    const raw = await hkdf(base, EMPTY, label('Secret key'), KEY_LEN);
    const salt = await hkdf(base, EMPTY, label('Secret salt'), NONCE_LEN);
    const key = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
    const k = new SframeKey();
    k.kid = BigInt(epoch);
    k.key = key;
    k.salt = salt;
    k.counter = 0n;
    return k;
  }

  nonce(ctr) {
    const nonce = this.salt.slice();
    const c = u64be(ctr);
    for (let i = 0; i < 8; i++) nonce[NONCE_LEN - 8 + i] ^= c[i];
    return nonce;
  }
}

function encodeHeader(kid, ctr) {
  let first = 0;
  const parts = [];
  if (kid < 8n) {
    first |= Number(kid) << 4;
  } else {
    const b = minBytes(kid);
    first |= 0x80 | ((b.length - 1) << 4);
    parts.push(b);
  }
  if (ctr < 8n) {
    first |= Number(ctr);
  } else {
    const b = minBytes(ctr);
    first |= 0x08 | (b.length - 1);
    parts.push(b);
  }
  return concat([first], ...parts);
}

function readBig(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function decodeHeader(data) {
  if (data.length < 1) throw new Error('empty SFrame');
  const first = data[0];
  let at = 1;
  let kid = BigInt((first >> 4) & 7);
  if (first & 0x80) {
    const len = ((first >> 4) & 7) + 1;
    kid = readBig(data.subarray(at, at + len));
    at += len;
  }
  let ctr = BigInt(first & 7);
  if (first & 0x08) {
    const len = (first & 7) + 1;
    ctr = readBig(data.subarray(at, at + len));
    at += len;
  }
  if (at > data.length) throw new Error('truncated SFrame header');
  return { kid, ctr, length: at };
}

/// header || AES-GCM(payload, aad = header || meta) || tag
export async function sframeEncrypt(key, payload, meta = EMPTY) {
  const ctr = key.counter++;
  const header = encodeHeader(key.kid, ctr);
  const ct = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: key.nonce(ctr), additionalData: concat(header, meta), tagLength: 128 },
    key.key, payload);
  return concat(header, new Uint8Array(ct));
}

/// The payload of an SFrame; `keyFor(kid)` finds the key. Throws when it
/// does not authenticate.
export async function sframeDecrypt(keyFor, sealed, meta = EMPTY) {
  const { kid, ctr, length } = decodeHeader(sealed);
  const key = keyFor(kid);
  if (!key) throw new Error(`no key for key id ${kid}`);
  const header = sealed.subarray(0, length);
  const plain = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: key.nonce(ctr), additionalData: concat(header, meta), tagLength: 128 },
    key.key, sealed.subarray(length));
  return new Uint8Array(plain);
}

/// NAL units of an Annex B access unit (as parley_media::h264::nal_units).
function nalUnits(data) {
  const starts = [];
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) starts.push(i + 3);
  }
  const units = [];
  starts.forEach((start, n) => {
    let end = n + 1 < starts.length ? starts[n + 1] - 3 : data.length;
    while (end > start && data[end - 1] === 0) end--;
    if (end > start) units.push(data.subarray(start, end));
  });
  return units;
}

function clearLen(header) {
  const type = header & 0x1f;
  if (type === 7 || type === 8) return null;
  return type === 1 || type === 5 ? CLEAR_SLICE_BYTES : 0;
}

function trailingZeros(bytes) {
  let n = 0;
  for (let i = bytes.length - 1; i >= 0 && n < 2 && bytes[i] === 0; i--) n++;
  return n;
}

function escape(zeros, data, out) {
  for (const b of data) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
}

function unescape(zeros, data) {
  const out = [];
  for (const b of data) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
}

/// Encrypts one H.264 access unit (Annex B) in Parley's framing.
export async function sealH264(key, data) {
  const out = [];
  for (const nal of nalUnits(data)) {
    out.push(...START_CODE);
    const clear = clearLen(nal[0]);
    if (clear === null) {
      for (const b of nal) out.push(b);
      continue;
    }
    if (nal.length <= clear) throw new Error('slice shorter than its header');
    const head = nal.subarray(0, 1 + clear);
    const sealed = await sframeEncrypt(key, nal.subarray(1 + clear), head);
    for (const b of head) out.push(b);
    escape(trailingZeros(head), sealed, out);
    out.push(NAL_TRAILER);
  }
  return Uint8Array.from(out);
}

/// Decrypts one H.264 access unit sealed by sealH264 (or the Rust client).
export async function openH264(keyFor, data) {
  const parts = [];
  const units = nalUnits(data);
  if (units.length === 0) throw new Error('no NAL unit');
  for (const nal of units) {
    parts.push(Uint8Array.from(START_CODE));
    const clear = clearLen(nal[0]);
    if (clear === null) {
      parts.push(nal);
      continue;
    }
    const n = Math.min(nal.length, 1 + clear);
    const head = nal.subarray(0, n);
    const rest = nal.subarray(n);
    if (rest.length === 0 || rest[rest.length - 1] !== NAL_TRAILER) {
      throw new Error('NAL unit without its trailer');
    }
    const sealed = unescape(trailingZeros(head), rest.subarray(0, rest.length - 1));
    parts.push(head, await sframeDecrypt(keyFor, sealed, head));
  }
  return concat(...parts);
}
