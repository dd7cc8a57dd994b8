// Keyboard shortcuts: single keys, ignored while typing in a field or with a dialog open.

function typing(target) {
  if (!(target instanceof Element)) return false;
  return target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]') !== null;
}

/**
 * Binds `map` (key -> function) to the document. Keys are `KeyboardEvent.key` values
 * (`j`, `Enter`, `#`, `?`, `/`). A handler that returns `false` lets the key through.
 */
export function bindKeys(map) {
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (document.querySelector('dialog[open]')) return;
    if (typing(e.target)) {
      // Escape leaves the search box.
      if (e.key === 'Escape' && e.target.id === 'search') e.target.blur();
      return;
    }
    const f = map[e.key];
    if (!f) return;
    if (f(e) !== false) e.preventDefault();
  });
}

/** The rows of the help dialog, for the keys a view binds. */
export const HELP = {
  j: ['j', 'Next message'],
  k: ['k', 'Previous message'],
  Enter: ['Enter', 'Open the message'],
  e: ['e', 'Archive'],
  '#': ['#', 'Delete'],
  s: ['s', 'Star or unstar'],
  u: ['u', 'Mark read or unread'],
  c: ['c', 'Compose'],
  '/': ['/', 'Search'],
  Escape: ['Esc', 'Close the message or dialog'],
  '?': ['?', 'This help'],
};
