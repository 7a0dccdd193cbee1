"""The reliability harness (../shared/RELIABILITY.md): a scripted fault SMTP server whose
fsynced log is the truth about delivery, a kill harness with lost/duplicate accounting, the
import audit hook, and the figures every catalogue test reports."""
