"""MQTT: state and events out, with Home Assistant discovery; commands in; a durable spool."""

from appliance.runtime.outputs.mqtt.output import MqttOutput

__all__ = ["MqttOutput"]
