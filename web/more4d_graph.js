// MoRe4D graph helpers (pure; no ComfyUI import, so the test page can load them with a fake graph).

// The node whose output is linked directly into `node`'s input `inputName`, when its type is `type`;
// null otherwise. Works with LiteGraph's graph.links as a plain object or as a Map.
export function linkedSourceNode(graph, node, inputName, type) {
  const input = (node.inputs || []).find((i) => i.name === inputName);
  if (!input || input.link === null || input.link === undefined || !graph) return null;
  const links = graph.links;
  const link = links && (typeof links.get === "function" ? links.get(input.link) : links[input.link]);
  if (!link) return null;
  const source = graph.getNodeById(link.origin_id);
  if (!source || (type && source.type !== type && source.comfyClass !== type)) return null;
  return source;
}
