"""Colours, fonts and sizes of the monitor look.

Parameter colours follow common bedside-monitor practice: ECG and heart rate
green, SpO2 and pleth cyan, respiration yellow, temperature white/magenta,
blood pressure red, on a black background.  Alarm colours follow
IEC 60601-1-8: high priority red, medium yellow, low cyan.
"""

from __future__ import annotations

from typing import Final

BACKGROUND: Final = "#000000"
PANEL: Final = "#0b0f14"
PANEL_BORDER: Final = "#26303a"
TEXT: Final = "#e6e6e6"
TEXT_DIM: Final = "#8a96a3"

PARAMETER_COLOURS: Final = {
    "ecg": "#33ff66",
    "ecg2": "#33ff66",
    "hr": "#33ff66",
    "pleth": "#29d3ff",
    "spo2": "#29d3ff",
    "pulse": "#29d3ff",
    "resp": "#ffe23d",
    "rr": "#ffe23d",
    "temp": "#f0a0ff",
    "nibp": "#ff5a5a",
}

ALARM_HIGH: Final = "#e0161b"
ALARM_MEDIUM: Final = "#f5c400"
ALARM_LOW: Final = "#00c8e0"
TECHNICAL: Final = "#4aa3ff"

STATE_COLOURS: Final = {
    "streaming": "#33cc66",
    "connecting": "#f5c400",
    "scanning": "#f5c400",
    "reconnecting": "#f5a000",
    "signal loss": ALARM_MEDIUM,
    "disconnected": TEXT_DIM,
    "failed": ALARM_HIGH,
}

STYLESHEET: Final = f"""
QWidget {{ background: {BACKGROUND}; color: {TEXT}; font-family: "DejaVu Sans", "Segoe UI", sans-serif; }}
QFrame#BedTile {{ background: {PANEL}; border: 2px solid {PANEL_BORDER}; border-radius: 6px; }}
QFrame#BedTile:hover {{ border: 2px solid #4a5a6a; }}
QLabel#BedLabel {{ font-size: 20px; font-weight: bold; background: transparent; }}
QLabel#PatientLabel {{ font-size: 15px; color: {TEXT_DIM}; background: transparent; }}
QLabel#StateLabel {{ font-size: 13px; background: transparent; }}
QLabel#NumericValue {{ font-weight: bold; background: transparent; }}
QLabel#NumericName {{ font-size: 13px; background: transparent; }}
QFrame#TopBar {{ background: #10161d; border-bottom: 1px solid {PANEL_BORDER}; }}
QLabel#WardTitle {{ font-size: 20px; font-weight: bold; }}
QLabel#Clock {{ font-size: 20px; color: {TEXT_DIM}; }}
QPushButton {{ background: #1b2530; border: 1px solid #34414e; border-radius: 4px;
               padding: 6px 14px; font-size: 15px; }}
QPushButton:hover {{ background: #243140; }}
"""
