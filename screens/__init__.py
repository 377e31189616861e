"""The Textual wizard over the sme2tui core: one screen per step, shared widgets, styles.

Nothing here decides anything about exports, runs or statistics: screens call the core (through
`services.CoreServices`) and render the typed events it yields.
"""
