"""SMTP reply codes and RFC 3463 enhanced status codes as they appear in text: one reader
for the live replies delivery judges and the delivery reports bounce intake reads."""

from __future__ import annotations

import re

__all__ = ["ENHANCED_STATUS", "SMTP_REPLY"]

# class (2, 4, 5), subject (1 addressing, 2 mailbox, 7 policy, ...), detail: "5.1.1"
ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# an SMTP reply: a code followed by an enhanced status or words ("550 5.1.1", "451-Try",
# "553 Exceeded"), so a phone number such as 480-624-2500 is not read as a 4xx
SMTP_REPLY = re.compile(r"(?<![\w.+-])([245])\d\d(?:[ -](?:[245]\.\d|[A-Za-z<#(\[])|[ ]*$)",
                        re.MULTILINE)
