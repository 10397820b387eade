"""The playbook's month-rotated time series: readings bucketed by month in the partition key."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from asyncdyn.model import Design, Entity

iot = Design("Sensors")


@iot.entity("Reading")
class Reading(Entity):
    sensor_id: str
    at: datetime
    value: Decimal
    key = iot.key(pk="SENSOR#{sensor_id}#{at:%Y-%m}", sk="{at}")
