"""ROP Report (Отчёт РОПа): a sales department report over a Bitrix24 CRM copy."""

__version__ = "0.1.0"
