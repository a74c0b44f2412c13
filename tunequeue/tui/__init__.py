"""The Textual app: screens, widgets and the dialogs of ``tunequeue ui``.

Screens show texts from the catalog ``tunequeue/locales/en.yaml`` and ``zh.yaml`` through `text.tr`
(and `tunequeue.core.i18n.text`); a new text is a new key in both files, never a table in a module.
"""
