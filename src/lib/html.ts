// Escaping text for HTML, for every page dspool renders (hub pages, the API reference, gateway error pages).

/**
 * Escapes `& < > " '` so text is safe in element content and quoted attributes.
 *
 * @example
 * escapeHtml('<b>"x"</b>'); // '&#60;b&#62;&#34;x&#34;&#60;/b&#62;'
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
