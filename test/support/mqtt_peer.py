"""An independent MQTT 5 peer for linkd's bus tests: Debian's paho-mqtt and cbor2.

Reads one JSON request per line on stdin and writes one JSON event per line on stdout:

  {"op": "connect", "port", "username"?, "password"?, "client_id", "protocol": 5|4}
      -> {"ev": "connack", "rc"}                 (rc: the CONNACK reason code)
  {"op": "subscribe", "id", "topic", "qos", "rap"?}  -> {"ev": "suback", "id", "rcs": [...]}
      (rap: MQTT 5 Retain As Published, so live messages show the retain flag linkd set)
  {"op": "publish", "id", "topic", "hex", "qos", "retain", "response_topic"?,
   "correlation_hex"?}                           -> {"ev": "published", "id", "rc"}
      (rc: the PUBACK reason code as read off the wire for QoS 1, else 0)
  {"op": "flood", "id", "topic", "hex", "count", "response_topic", "correlation_prefix"}
      -> {"ev": "flooded", "id"}   (count QoS 1 publishes without waiting; correlation data is
                                    the prefix and the index as 4 bytes)
  {"op": "disconnect"}                           -> {"ev": "disconnected"}
  every message received                         -> {"ev": "message", "topic", "retain", "qos",
      "hex", "cbor" (decoded, bytes as {"$bytes": hex}), "shape" (Python type names),
      "cbor_error"?, "expiry", "response_topic", "correlation_hex"}
"""
import json
import sys
import threading

import cbor2
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

out_lock = threading.Lock()


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def jsonable(v):
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    return v


def shape(v):
    if isinstance(v, dict):
        return {("" if isinstance(k, str) else "!") + str(k): shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v]
    return type(v).__name__


class Peer(mqtt.Client):
    """Records the PUBACK reason code, which paho 1.6 reads but does not hand to on_publish."""

    def _handle_pubackcomp(self, cmd):
        pkt = self._in_packet["packet"]
        mid = int.from_bytes(pkt[:2], "big")
        rc = pkt[2] if len(pkt) > 2 else 0
        self.puback_rc[mid] = rc
        return super()._handle_pubackcomp(cmd)


client = None
pending_pub = {}  # mid -> id
pending_sub = []  # ids of the SUBSCRIBEs sent, in order: SUBACKs come back in that order


def on_connect(c, userdata, flags, rc, properties=None):
    emit({"ev": "connack", "rc": int(rc.value) if hasattr(rc, "value") else int(rc)})


def on_subscribe(c, userdata, mid, granted, properties=None):
    rcs = [int(g.value) if hasattr(g, "value") else int(g) for g in granted]
    emit({"ev": "suback", "id": pending_sub.pop(0) if pending_sub else None, "rcs": rcs})


def on_publish(c, userdata, mid):
    if mid in pending_pub:
        emit({"ev": "published", "id": pending_pub.pop(mid), "rc": c.puback_rc.pop(mid, 0)})


def on_message(c, userdata, msg):
    ev = {"ev": "message", "topic": msg.topic, "retain": bool(msg.retain), "qos": msg.qos,
          "hex": msg.payload.hex(), "cbor": None, "shape": None, "expiry": None,
          "response_topic": None, "correlation_hex": None}
    if msg.payload:
        try:
            v = cbor2.loads(msg.payload)
            ev["cbor"] = jsonable(v)
            ev["shape"] = shape(v)
        except Exception as e:  # a test asserts on it
            ev["cbor_error"] = str(e)
    p = getattr(msg, "properties", None)
    if p is not None:
        ev["expiry"] = getattr(p, "MessageExpiryInterval", None)
        ev["response_topic"] = getattr(p, "ResponseTopic", None)
        cd = getattr(p, "CorrelationData", None)
        ev["correlation_hex"] = bytes(cd).hex() if cd is not None else None
    emit(ev)


def on_disconnect(c, userdata, rc, properties=None):
    emit({"ev": "disconnected", "rc": int(rc.value) if hasattr(rc, "value") else int(rc)})


for line in sys.stdin:
    req = json.loads(line)
    op = req["op"]
    if op == "connect":
        v5 = req.get("protocol", 5) == 5
        kw = {"client_id": req["client_id"], "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311}
        if not v5:
            kw["clean_session"] = True
        client = Peer(**kw)
        client.puback_rc = {}
        if req.get("username") is not None:
            client.username_pw_set(req["username"], req.get("password"))
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_publish = on_publish
        client.on_message = on_message
        client.on_disconnect = on_disconnect
        try:
            if v5:
                client.connect("127.0.0.1", req["port"], keepalive=30, clean_start=True)
            else:
                client.connect("127.0.0.1", req["port"], keepalive=30)
        except Exception as e:
            emit({"ev": "connack", "rc": -1, "error": str(e)})
            continue
        client.loop_start()
    elif op == "subscribe":
        pending_sub.append(req.get("id"))  # before the SUBACK can arrive
        if client._protocol == mqtt.MQTTv5:
            opts = SubscribeOptions(qos=req.get("qos", 1), retainAsPublished=req.get("rap", False))
            r, mid = client.subscribe(req["topic"], options=opts)
        else:
            r, mid = client.subscribe(req["topic"], qos=req.get("qos", 1))
    elif op == "publish":
        props = None
        if req.get("response_topic") is not None or req.get("correlation_hex") is not None:
            props = Properties(PacketTypes.PUBLISH)
            if req.get("response_topic") is not None:
                props.ResponseTopic = req["response_topic"]
            if req.get("correlation_hex") is not None:
                props.CorrelationData = bytes.fromhex(req["correlation_hex"])
        with client._out_message_mutex:  # register the id before on_publish can fire
            info = client.publish(req["topic"], bytes.fromhex(req.get("hex", "")),
                                  qos=req.get("qos", 1), retain=req.get("retain", False),
                                  properties=props)
            if req.get("qos", 1) == 0:
                emit({"ev": "published", "id": req.get("id"), "rc": 0})
            else:
                pending_pub[info.mid] = req.get("id")
    elif op == "flood":
        for i in range(req["count"]):
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = req["response_topic"]
            props.CorrelationData = bytes.fromhex(req["correlation_prefix"]) + i.to_bytes(4, "big")
            client.publish(req["topic"], bytes.fromhex(req.get("hex", "")), qos=1, properties=props)
        emit({"ev": "flooded", "id": req.get("id")})
    elif op == "disconnect":
        if client is not None:
            client.disconnect()
            client.loop_stop()
            client = None
        emit({"ev": "disconnected", "rc": 0})
