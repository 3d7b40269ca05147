// The official TypeScript MCP client against taskapi's MCP server.
//
// node client.mjs <endpoint URL> <access token>
// Lists the tools and calls a few (the SDK validates each structuredContent
// against the tool's outputSchema); prints one JSON line with what it saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "taskapi-test-ts", version: "1.0.0" });
await client.connect(transport);

const tools = (await client.listTools()).tools;
const added = await client.callTool({
  name: "add_task",
  arguments: { title: "From TypeScript", tags: ["ts"], due_at: "2026-11-30T17:00:00Z" },
});
const completed = await client.callTool({
  name: "complete_task",
  arguments: { task_id: added.structuredContent.task.id },
});
const listed = await client.callTool({ name: "list_tasks", arguments: { status: "completed" } });
const tags = await client.callTool({ name: "list_tags", arguments: {} });
const changes = await client.callTool({ name: "get_changes", arguments: {} });
const refused = await client.callTool({ name: "add_task", arguments: { title: "" } });
const missing = await client.callTool({ name: "get_task", arguments: { task_id: 2147483647 } });

console.log(
  JSON.stringify({
    server: client.getServerVersion(),
    tools: tools.map((tool) => ({ name: tool.name, readOnly: tool.annotations?.readOnlyHint })),
    added: added.structuredContent,
    completed: completed.structuredContent,
    listed: listed.structuredContent,
    tags: tags.structuredContent,
    changes: changes.structuredContent,
    refused: { isError: refused.isError, text: refused.content[0].text },
    missing: { isError: missing.isError, text: missing.content[0].text },
  }),
);
await client.close();
