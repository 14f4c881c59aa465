/** Values substituted for `{node_id}` and `{service_id}` in endpoint and mount paths (SPEC §2). */
export interface TemplateValues {
  node_id: string;
  service_id: string;
}

/** Replaces every `{node_id}` and `{service_id}`; other braces are left alone. */
export function fillTemplate(text: string, values: TemplateValues): string {
  // One pass, so a substituted value is never itself rescanned for placeholders.
  return text.replace(/\{(node_id|service_id)\}/g, (_placeholder, name: keyof TemplateValues) => values[name]);
}
