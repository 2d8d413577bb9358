#!/usr/bin/env python3
"""An example audio-pipeline client of linkd's bus, written from CONTRACT.md section 4 alone.

It connects to the speaker's MQTT broker (MQTT 5 when the broker speaks it, else 3.1.1),
subscribes to P/state, P/pairing, P/token, P/capabilities and P/say (P is the bus prefix,
`linkd` by default), decodes their CBOR payloads and prints what an audio pipeline would do
with each: speak the prompt, use the access token for AVS and Music, drop it when linkd says
`unlinked`, tell the user to link again after `invalid_grant`.

Over MQTT 5 it asks for the current token with P/cmd/token (a token is never retained, so a
client that joins later asks for it) and, with --refresh, tells linkd the token was refused
with P/cmd/refresh {reason: "rejected"}; replies come to a response topic under
P/reply/<user>/ with correlation data, and are printed. Over MQTT 3.1.1 commands have no
response topic: linkd carries them out and does not answer; the token comes on P/token at the next link or
refresh.

Usage:
  python3 examples/audio_client.py [--url mqtt://127.0.0.1:1883] [--prefix linkd]
                                   [--user audio] [--once] [--refresh] [--timeout S]

  --once      exit 0 once a token has arrived (and, with --refresh, its reply); exit 1 if
              none arrives within --timeout seconds (default 60)
  --refresh   after the first token, send P/cmd/refresh {reason: "rejected"} and print the reply

Needs paho-mqtt (1.x or 2.x) and cbor2 (Debian: python3-paho-mqtt python3-cbor2). Secrets are
never printed whole: only the first characters of a token.
"""
import argparse
import itertools
import sys
import threading
import urllib.parse

import cbor2
import paho.mqtt.client as mqtt

try:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    HAVE_V5 = hasattr(mqtt, "MQTTv5")
except ImportError:  # paho-mqtt before 1.5: MQTT 3.1.1 only
    HAVE_V5 = False


def say(line):
    print(line, flush=True)


def make_client(client_id, protocol):
    """A paho Client for both APIs: 2.x wants a callback API version first, 1.x has none."""
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    return mqtt.Client(client_id=client_id, protocol=protocol)


class AudioClient:
    def __init__(self, args):
        self.args = args
        self.prefix = args.prefix
        self.v5 = False
        self.token = None
        self.refresh_sent = False
        self.refresh_answered = False
        self.done = threading.Event()
        self.closing = False
        self.told_deregistered = False
        self.got_token = False  # a token has arrived (it may be dropped since)
        self.failed = None
        self.ids = itertools.count(1)
        self.pending = {}  # correlation data -> command name

    # --- what arrives -------------------------------------------------------------------------

    def on_message(self, client, userdata, msg):
        name = msg.topic[len(self.prefix) + 1:] if msg.topic.startswith(self.prefix + "/") else ""
        if msg.payload == b"":
            if name == "pairing":
                say("[audio] pairing ended: stop showing and speaking the code")
            return
        try:
            value = cbor2.loads(msg.payload)
        except Exception as e:  # a consumer never crashes on a bad payload
            say(f"[audio] ignored {msg.topic}: not CBOR ({e})")
            return
        if not isinstance(value, dict):
            say(f"[audio] ignored {msg.topic}: not a CBOR map")
            return
        if name.startswith("reply/"):
            self.on_reply(msg, value)
        elif name == "state":
            self.on_state(value)
        elif name == "pairing":
            say(f"[audio] pairing: code {value.get('user_code')} at {value.get('verification_uri')}"
                f" (expires in {value.get('expires_in')} s)")
        elif name == "say":
            say(f"[audio] would speak ({value.get('lang')}): \"{value.get('text')}\"")
        elif name == "capabilities":
            denied = [f"{d.get('scope')} ({d.get('reason')})" for d in value.get("denied", [])
                      if isinstance(d, dict)]
            say(f"[audio] capabilities: granted {', '.join(value.get('granted', [])) or 'none'}"
                f"; denied {', '.join(denied) or 'none'}")
        elif name == "token":
            self.on_token(value, "P/token")

    def on_state(self, value):
        state = value.get("state")
        error = value.get("error") if isinstance(value.get("error"), dict) else None
        code = error.get("code") if error else None
        say(f"[audio] state: {state}{f' ({code})' if code else ''}")
        if state == "unlinked":
            if self.token is not None:
                say("[audio] unlinked: dropping the access token, Alexa and Music stop")
            self.token = None
            if code == "invalid_grant":
                self.deregistered()
        elif state == "offline":
            say("[audio] linkd is offline: keep the current token until it expires")

    def deregistered(self):
        """invalid_grant, on P/state or in a reply: the user removed this speaker from the account."""
        if not self.told_deregistered:
            self.told_deregistered = True
            say("[audio] the user deregistered this speaker: would say \"Link me again\"")

    def on_token(self, value, source):
        token = value.get("access_token")
        if not isinstance(token, str):
            say(f"[audio] ignored a token without access_token from {source}")
            return
        first = not self.got_token
        self.token = token
        self.got_token = True
        say(f"[audio] token received ({source}): {token[:12]}… ({len(token)} chars, "
            f"{value.get('token_type')}, scopes {' '.join(value.get('scopes', []))}, "
            f"expires in {value.get('expires_in')} s): would use it for AVS and Music")
        if first and self.args.refresh and not self.refresh_sent:
            self.refresh_sent = True
            self.command("refresh", {"reason": "rejected"})
            if not self.v5:
                say("[audio] refresh sent over MQTT 3.1.1: carried out, not answered")
                self.refresh_answered = True
        self.check_done()

    def on_reply(self, msg, value):
        corr = None
        props = getattr(msg, "properties", None)
        if props is not None and hasattr(props, "CorrelationData"):
            corr = bytes(props.CorrelationData)
        name = self.pending.pop(corr, None) or "unknown"
        if "access_token" in value:
            say(f"[audio] reply to {name}: a token")
            self.on_token(value, f"reply to {name}")
            return
        if value.get("ok") is True:
            say(f"[audio] reply to {name}: ok")
        else:
            error = value.get("error") if isinstance(value.get("error"), dict) else {}
            say(f"[audio] reply to {name}: error {error.get('code')}: {error.get('message')}")
            if error.get("code") == "invalid_grant":
                self.token = None
                self.deregistered()
        if name == "refresh":
            self.refresh_answered = True
        self.check_done()

    def check_done(self):
        if self.args.once and self.got_token and (
                not self.args.refresh or self.refresh_answered):
            self.done.set()

    # --- what goes out ------------------------------------------------------------------------

    def command(self, name, options):
        payload = cbor2.dumps(options)
        topic = f"{self.prefix}/cmd/{name}"
        if not self.v5:
            say(f"[audio] sent {topic} {options} (MQTT 3.1.1: no reply)")
            self.client.publish(topic, payload, qos=1)
            return
        n = next(self.ids)
        corr = f"{name}-{n}".encode()
        self.pending[corr] = name
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = f"{self.prefix}/reply/{self.args.user}/{n}"
        props.CorrelationData = corr
        say(f"[audio] sent {topic} {options} (reply to {props.ResponseTopic})")
        self.client.publish(topic, payload, qos=1, properties=props)

    # --- the connection -----------------------------------------------------------------------

    def on_connect(self, client, userdata, flags, rc, properties=None):
        code = getattr(rc, "value", rc)
        if code != 0:
            self.failed = f"the broker refused the connection ({rc})"
            self.settled.set()
            return
        say(f"[audio] connected over MQTT {'5' if self.v5 else '3.1.1'}")
        self.connected.set()
        self.settled.set()
        topics = ["state", "pairing", "token", "capabilities", "say"]
        subs = [(f"{self.prefix}/{t}", 1) for t in topics]
        if self.v5:
            subs.append((f"{self.prefix}/reply/{self.args.user}/#", 1))
        client.subscribe(subs)

    def on_disconnect(self, client, *args):
        if not self.connected.is_set():
            self.failed = self.failed or "the broker closed the connection"
            self.settled.set()
        elif not self.closing:
            say("[audio] disconnected from the broker: paho reconnects")

    def on_subscribe(self, client, *args):
        # CONTRACT: P/token is sent on link, after each refresh, and on request. Over MQTT 5
        # the reply carries it; over 3.1.1 (no response topic) it comes on P/token.
        self.command("token", {})

    def run(self):
        url = urllib.parse.urlparse(self.args.url)
        if url.scheme not in ("mqtt", "tcp"):
            say(f"audio_client: Cannot connect: only mqtt:// URLs are supported, got {url.scheme}")
            return 64
        host, port = url.hostname or "127.0.0.1", url.port or 1883
        versions = [mqtt.MQTTv5, mqtt.MQTTv311] if HAVE_V5 else [mqtt.MQTTv311]
        for protocol in versions:
            self.v5 = HAVE_V5 and protocol == mqtt.MQTTv5
            self.connected = threading.Event()
            self.settled = threading.Event()  # connected, refused or closed
            self.failed = None
            self.client = make_client(f"{self.args.user}-example-{id(self) & 0xffff}", protocol)
            self.client.username_pw_set(self.args.user)
            self.client.on_connect = self.on_connect
            self.client.on_subscribe = self.on_subscribe
            self.client.on_message = self.on_message
            self.client.on_disconnect = self.on_disconnect
            try:
                self.client.connect(host, port)
            except OSError as e:
                say(f"audio_client: Cannot connect to {host}:{port}: {e}")
                return 69
            self.client.loop_start()
            self.settled.wait(10)
            if self.connected.is_set():
                break
            self.client.loop_stop()
            try:
                self.client.disconnect()
            except Exception:
                pass
            if protocol != versions[-1]:
                say("[audio] the broker refused MQTT 5: trying 3.1.1 (commands go unanswered)")
        if not self.connected.is_set():
            say(f"audio_client: Cannot connect to {host}:{port}: {self.failed or 'no answer'}")
            return 69
        try:
            self.done.wait(self.args.timeout if self.args.once else None)
        except KeyboardInterrupt:
            pass
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()
        if self.args.once and not self.done.is_set():
            say(f"audio_client: No token within {self.args.timeout} s")
            return 1
        return 0


def main():
    p = argparse.ArgumentParser(description="An example audio-pipeline client of linkd's bus")
    p.add_argument("--url", default="mqtt://127.0.0.1:1883", help="the broker (mqtt://host:port)")
    p.add_argument("--prefix", default="linkd", help="bus.prefix (P)")
    p.add_argument("--user", default="audio", help="bus username; replies go to P/reply/USER/")
    p.add_argument("--once", action="store_true", help="exit 0 after the first token")
    p.add_argument("--refresh", action="store_true",
                   help="after the first token, send P/cmd/refresh {reason: rejected}")
    p.add_argument("--timeout", type=float, default=60, help="with --once, seconds to wait")
    args = p.parse_args()
    return AudioClient(args).run()


if __name__ == "__main__":
    sys.exit(main())
