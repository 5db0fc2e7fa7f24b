// Parley's browser demo: joins a demo room on the server's SFU with native
// WebRTC, publishes the camera and microphone, shows a tile per
// participant, and encrypts and decrypts every frame with SFrame through
// encoded transforms (keys from the room passphrase, which never leaves the
// page: it lives in the URL fragment, which browsers do not send).
//
// The SFU protocol is Parley's (sfu/src/control.rs): one offer to
// POST /v1/sfu/join with a data channel labelled "parley-sfu"; after that
// the SFU sends JSON control messages on it (welcome, joined, left, track,
// active_speaker, offer) and this page answers its offers there.
//
// window.parley holds the call's state for people and tests;
// window.parleyStats() adds the receive counters from getStats().

import { SframeKey, passphraseSecret, sealH264, openH264, sframeEncrypt, sframeDecrypt }
  from '/demo/sframe.js';

const $ = (id) => document.getElementById(id);
const state = {
  state: 'idle',
  me: null,
  participants: {},
  speakers: [],
  decrypted: {},
  decryptFailures: 0,
  encryptFailures: 0,
  errors: [],
};
window.parley = state;

let pc = null;
let channel = null;
let local = null;
let room = null;
let passphrase = null;
/** mid -> { kind, id } from the SFU's track messages. */
const tracks = new Map();
/** participant id -> { who, key: Promise<SframeKey>, tile } */
const peers = new Map();
/** Control messages are handled one at a time, in order. */
let queue = Promise.resolve();

function status(text) {
  $('status').textContent = text;
}

function fail(where, e) {
  console.error(where, e);
  state.errors.push(`${where}: ${e.message || e}`);
  status(`${where}: ${e.message || e}`);
}

function tile(id, label) {
  let el = document.querySelector(`.tile[data-id="${id}"]`);
  if (!el) {
    el = document.createElement('div');
    el.className = 'tile';
    el.dataset.id = id;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    const audio = document.createElement('audio');
    audio.autoplay = true;
    const name = document.createElement('span');
    name.className = 'name';
    el.append(video, audio, name);
    $('tiles').append(el);
  }
  el.querySelector('.name').textContent = label;
  return el;
}

function attach(el, track) {
  const media = el.querySelector(track.kind === 'video' ? 'video' : 'audio');
  media.srcObject = new MediaStream([track]);
  media.play().catch(() => {});
}

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(json.error || json.message || `${path}: HTTP ${response.status}`);
  return json;
}

function counted(user) {
  state.decrypted[user] ??= { audio: 0, video: 0 };
  return state.decrypted[user];
}

/** Encrypts what this page sends. */
function sendTransform(sender, kind, key) {
  const { readable, writable } = sender.createEncodedStreams();
  readable.pipeThrough(new TransformStream({
    async transform(frame, controller) {
      try {
        const data = new Uint8Array(frame.data);
        const sealed = kind === 'video' ? await sealH264(key, data) : await sframeEncrypt(key, data);
        frame.data = sealed.buffer;
        controller.enqueue(frame);
      } catch (e) {
        state.encryptFailures++;
      }
    },
  })).pipeTo(writable);
}

/** Decrypts what a participant sends; undecryptable frames are dropped. */
function receiveTransform(receiver, kind, mid) {
  const { readable, writable } = receiver.createEncodedStreams();
  readable.pipeThrough(new TransformStream({
    async transform(frame, controller) {
      const track = tracks.get(mid);
      const peer = track && peers.get(track.id);
      if (!peer) {
        state.decryptFailures++;
        return;
      }
      try {
        const key = await peer.key;
        const keyFor = (kid) => (kid === key.kid ? key : null);
        const data = new Uint8Array(frame.data);
        const plain = kind === 'video' ? await openH264(keyFor, data) : await sframeDecrypt(keyFor, data);
        frame.data = plain.buffer;
        counted(peer.who.user)[kind]++;
        controller.enqueue(frame);
      } catch (e) {
        state.decryptFailures++;
      }
    },
  })).pipeTo(writable);
}

function addPeer(who) {
  if (peers.has(who.id)) return;
  const key = passphraseSecret(passphrase, room, who.user, who.device)
    .then((secret) => SframeKey.derive(secret, room, 0));
  peers.set(who.id, { who, key, tile: tile(who.id, who.user) });
  state.participants[who.id] = who;
}

function removePeer(who) {
  const peer = peers.get(who.id);
  if (peer) peer.tile.remove();
  peers.delete(who.id);
  delete state.participants[who.id];
}

function highlight(id) {
  for (const el of document.querySelectorAll('.tile')) {
    el.classList.toggle('speaking', el.dataset.id === String(id));
  }
}

async function control(message) {
  switch (message.type) {
    case 'welcome':
      state.me = message.you;
      tile(message.you.id, `${message.you.user} (you)`);
      attach(tile(message.you.id, `${message.you.user} (you)`), local.getVideoTracks()[0]);
      document.querySelector('.tile[data-id="local"]')?.remove();
      for (const other of message.others) addPeer(other);
      break;
    case 'joined':
      addPeer(message.participant);
      break;
    case 'left':
      removePeer(message.participant);
      break;
    case 'track':
      tracks.set(message.mid, { kind: message.kind, id: message.participant.id });
      addPeer(message.participant);
      break;
    case 'active_speaker':
      state.speakers.push(message.participant.user);
      highlight(message.participant.id);
      break;
    case 'offer': {
      await pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      channel.send(JSON.stringify({ type: 'answer', sdp: answer.sdp }));
      break;
    }
    default:
      console.debug('control message ignored', message);
  }
}

function iceGathered(timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === 'complete') resolve();
    };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, timeoutMs);
  });
}

async function join(roomName, name, secret) {
  state.state = 'joining';
  passphrase = secret;
  status('Starting camera and microphone…');
  // #raw=1 turns the microphone's processing off (tests feed files whose
  // loudness they choose; people want echo cancellation).
  const raw = new URLSearchParams(location.hash.slice(1)).get('raw') === '1';
  local = await navigator.mediaDevices.getUserMedia({
    audio: raw ? { autoGainControl: false, echoCancellation: false, noiseSuppression: false } : true,
    video: { width: 640, height: 480, frameRate: 30 },
  });
  attach(tile('local', `${name} (you)`), local.getVideoTracks()[0]);
  status('Joining…');
  const grant = await post('/v1/demo/join', { room: roomName, name });
  room = grant.room;
  const myKey = await SframeKey.derive(
    await passphraseSecret(passphrase, room, grant.user, grant.device), room, 0);

  pc = new RTCPeerConnection({ encodedInsertableStreams: true, bundlePolicy: 'max-bundle' });
  const audio = pc.addTransceiver(local.getAudioTracks()[0], { direction: 'sendonly' });
  const video = pc.addTransceiver(local.getVideoTracks()[0], { direction: 'sendonly' });
  // Parley's clients speak H.264 (Constrained Baseline, non-interleaved).
  const h264 = RTCRtpSender.getCapabilities('video').codecs.filter((c) =>
    c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine || '')
      && /profile-level-id=42e01f/.test(c.sdpFmtpLine || ''));
  if (h264.length) video.setCodecPreferences(h264);
  sendTransform(audio.sender, 'audio', myKey);
  sendTransform(video.sender, 'video', myKey);
  channel = pc.createDataChannel('parley-sfu');
  channel.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (e) {
      fail('control message', e);
      return;
    }
    queue = queue.then(() => control(message)).catch((e) => fail(message.type, e));
  };
  pc.ontrack = (event) => {
    const mid = event.transceiver.mid;
    receiveTransform(event.receiver, event.track.kind, mid);
    const track = tracks.get(mid);
    const peer = track && peers.get(track.id);
    if (peer) attach(peer.tile, event.track);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'connected') {
      state.state = 'joined';
      status(`In room ${roomName} as ${name}. Media is end-to-end encrypted.`);
    } else if (pc.connectionState === 'failed') {
      fail('connection', new Error('the connection to the SFU failed'));
    }
  };

  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(2000);
  const { answer } = await post('/v1/sfu/join', { room, token: grant.token, offer: pc.localDescription.sdp });
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  // A test pattern or a face: keep its size, drop frames if need be.
  try {
    const params = video.sender.getParameters();
    params.degradationPreference = 'maintain-resolution';
    await video.sender.setParameters(params);
  } catch (e) {
    console.debug('degradationPreference not supported', e);
  }
  $('join').hidden = true;
  $('controls').hidden = false;
}

function leave() {
  try {
    channel?.send(JSON.stringify({ type: 'leave' }));
  } catch (e) {
    console.debug('leave message not sent', e);
  }
  pc?.close();
  local?.getTracks().forEach((t) => t.stop());
  $('tiles').replaceChildren();
  $('controls').hidden = true;
  $('join').hidden = false;
  state.state = 'left';
  status('You left the call.');
}

/** Receive counters per participant, from getStats(). */
window.parleyStats = async () => {
  const out = {};
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    const track = tracks.get(s.mid);
    const peer = track && peers.get(track.id);
    if (!peer) return;
    const entry = (out[peer.who.user] ??= {});
    if (s.kind === 'video') {
      entry.framesDecoded = s.framesDecoded ?? 0;
      entry.frameWidth = s.frameWidth ?? 0;
      entry.frameHeight = s.frameHeight ?? 0;
    } else {
      entry.audioPacketsReceived = s.packetsReceived ?? 0;
      entry.audioSamplesReceived = s.totalSamplesReceived ?? 0;
      entry.audioConcealedSamples = s.concealedSamples ?? 0;
    }
  });
  return out;
};

$('join').addEventListener('submit', (event) => {
  event.preventDefault();
  join($('room').value, $('name').value, $('passphrase').value)
    .catch((e) => { state.state = 'failed'; fail('join', e); });
});
$('leave').addEventListener('click', leave);
$('mute').addEventListener('click', () => {
  const track = local?.getAudioTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  $('mute').textContent = track.enabled ? 'Mute' : 'Unmute';
});

// /demo#room=lobby&passphrase=...&name=...&autojoin=1 fills the form (the
// fragment never reaches the server).
const params = new URLSearchParams(location.hash.slice(1));
for (const field of ['room', 'name', 'passphrase']) {
  if (params.has(field)) $(field).value = params.get(field);
}
if (params.get('autojoin') === '1') $('join').requestSubmit();
