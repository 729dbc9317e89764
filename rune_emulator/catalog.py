"""The live service's 27 stream types (public evidence: runeq notebook 06, test fixtures).

Ids, names and the dimensions of ``rotation``, ``current``, ``boolean``, ``duration``,
``voltage-spectrum``, ``event`` and ``span`` are as the evidence shows them; every other
dimension (identifier, data type, units) and the completed descriptions are inferred in
the same style: see "Inferences" in ``rune_emulator/README.md``.
"""

from __future__ import annotations

from .models import Dimension, StreamType


def _d(ident: str, dtype: str, qname: str, qabbr: str, uname: str = "", uabbr: str = ""):
    return Dimension(ident, dtype, qname, qabbr, uname, uabbr)


def _ts(ident: str = "time") -> Dimension:
    return _d(ident, "timestamp", "Time", "t", "Nanoseconds", "ns")


TIME = _ts()
PAYLOAD = _d("event", "dict", "Payload", "Payload")

_TYPES: list[tuple[str, str, str, tuple[Dimension, ...]]] = [
    (
        "acceleration",
        "Acceleration",
        "Acceleration sampled in the time-domain.",
        (TIME, _d("acceleration", "sfloat", "Acceleration", "a", "Standard gravity", "g")),
    ),
    (
        "boolean",
        "Boolean",
        "True/False condition (or On/Off state) calculated or measured over time.",
        (TIME, _d("bool", "bool", "Binary Result", "Result")),
    ),
    (
        "bytes",
        "Byte Data",
        "Raw binary data stored as a sequence of bytes.",
        (_d("offset", "uint", "Offset", "Offset", "Bytes", "B"), _d("byte", "uint", "Byte", "B")),
    ),
    (
        "count",
        "Count",
        "Count of events or other data points, observed or calculated over time.",
        (TIME, _d("count", "uint", "Count", "n")),
    ),
    (
        "current",
        "Current",
        "Electric current (in Amperes) sampled in the time-domain.",
        (TIME, _d("current", "sfloat", "Current", "I", "Amps", "A")),
    ),
    (
        "distance",
        "Distance",
        "Distance, sampled or calculated over time.",
        (TIME, _d("distance", "ufloat", "Distance", "d", "Meters", "m")),
    ),
    (
        "duration",
        "Duration",
        "Durations, sampled or calculated over time.",
        (TIME, _d("duration", "sfloat", "Duration", "Duration", "Seconds", "s")),
    ),
    (
        "event",
        "Event",
        "Occurrences of a specific type or class of event over time",
        (TIME, PAYLOAD),
    ),
    (
        "voltage-spectrum",
        "FFT Time-Domain",
        "Electric potential in frequency domain, calculated over a series of time windows.",
        (
            TIME,
            _d("frequency", "ufloat", "Frequency", "Freq", "Hertz", "Hz"),
            _d("potential", "sfloat", "Potential", "Potential", "Volts", "V"),
        ),
    ),
    (
        "frequency",
        "Frequency",
        "Frequency samples (in Hertz) recorded in the time-domain.",
        (TIME, _d("frequency", "ufloat", "Frequency", "Freq", "Hertz", "Hz")),
    ),
    (
        "impedance",
        "Impedance",
        "Effective resistance of electric current, sampled over time.",
        (TIME, _d("impedance", "ufloat", "Impedance", "Z", "Ohms", "Ohm")),
    ),
    (
        "voltage-psd-spectrogram",
        "PSD Spectrogram",
        "PSD calculated on a sequence of partially overlapping time windows.",
        (
            TIME,
            _d("frequency", "ufloat", "Frequency", "Freq", "Hertz", "Hz"),
            _d(
                "psd",
                "ufloat",
                "Power Spectral Density",
                "PSD",
                "Volts squared per Hertz",
                "V^2/Hz",
            ),
        ),
    ),
    (
        "percentage",
        "Percentage",
        "Percentage quantities (as a decimal), sampled or calculated over time.",
        (TIME, _d("percentage", "ufloat", "Percentage", "Percent", "Decimal fraction", "")),
    ),
    (
        "power",
        "Power",
        "Time-domain signal power, such as for a frequency band of a neural signal.",
        (TIME, _d("power", "ufloat", "Power", "P", "Volts squared", "V^2")),
    ),
    (
        "pressure",
        "Pressure",
        "Pressure, sampled or calculated over time.",
        (TIME, _d("pressure", "ufloat", "Pressure", "p", "Kilopascals", "kPa")),
    ),
    (
        "probability",
        "Probability",
        "Probability (in the [0.0, 1.0] interval) of events, calculated over time.",
        (TIME, _d("probability", "ufloat", "Probability", "p")),
    ),
    (
        "probability-distribution",
        "Probability/percentage distribution",
        "Distribution of probabilities or percentages over a set of classes, over time.",
        (
            TIME,
            _d("class", "uint", "Class", "Class"),
            _d("probability", "ufloat", "Probability", "p"),
        ),
    ),
    (
        "rate-per-min",
        "Rate per minute",
        "Rate per minute measured over a sequence of time windows.",
        (TIME, _d("rate", "ufloat", "Rate", "Rate", "Per minute", "1/min")),
    ),
    (
        "rotation",
        "Rotation",
        "Rotation rate (angular velocity) sampled in the time-domain.",
        (
            TIME,
            _d("rotation", "sfloat", "Angular Velocity", "Rotation", "Radians per second", "rps"),
        ),
    ),
    (
        "span",
        "Span",
        "Occurrences of a specific type or class of event that spans a finite interval of time.",
        (_ts("start_time_min"), _ts("start_time"), _ts("end_time"), _ts("end_time_max"), PAYLOAD),
    ),
    (
        "speed",
        "Speed",
        "Speed, sampled or calculated over time.",
        (TIME, _d("speed", "ufloat", "Speed", "v", "Meters per second", "m/s")),
    ),
    (
        "state",
        "State",
        "Current state at a point in time, from a predefined set of states.",
        (TIME, _d("state", "uint", "State", "State")),
    ),
    (
        "timezone",
        "Timezone",
        "Timezone, timezone offset of data collected.",
        (TIME, _d("offset", "sfloat", "UTC Offset", "Offset", "Seconds", "s")),
    ),
    (
        "intvalue",
        "Unitless Integer Value",
        "Integer representing a custom or unit-less value, over time.",
        (TIME, _d("value", "uint", "Value", "Value")),
    ),
    (
        "unitless-power",
        "Unitless Power",
        "Aggregate power of a selected frequency band calculated by a device, over time.",
        (TIME, _d("power", "sfloat", "Power", "Power")),
    ),
    (
        "value",
        "Unitless Value",
        "Real number representing a custom or unit-less value, over time.",
        (TIME, _d("value", "sfloat", "Value", "Value")),
    ),
    (
        "voltage",
        "Voltage",
        "Time-domain electric potential, such as LFP, EEG or EMG.",
        (TIME, _d("voltage", "sfloat", "Potential", "V", "Volts", "V")),
    ),
]

#: Every stream type of the live catalog, by id (27, in the notebook's order).
STREAM_TYPES: dict[str, StreamType] = {
    tid: StreamType(tid, name, desc, dims) for tid, name, desc, dims in _TYPES
}
