// A second, independent Lambda client for Gust: the AWS SDK for JavaScript
// v3 drives a small lifecycle (create, publish, alias, invoke, weighted
// alias, a typed error, delete) against a running node.
//
// internal/node/jssdk_test.go runs it; by hand:
//
//	GUST_ENDPOINT=http://127.0.0.1:8080 AWS_ACCESS_KEY_ID=... \
//	AWS_SECRET_ACCESS_KEY=... GUST_WASM=hello.wasm node compat/js/scenario.mjs
//
// GUST_WASM is the hello example built as a wasm module
// (examples/hello). The scenario exits 1 with a message naming the first
// mismatch, and prints a JSON summary on success.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  CreateAliasCommand,
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetAliasCommand,
  GetFunctionCommand,
  InvokeCommand,
  LambdaClient,
  LambdaServiceException,
  ListAliasesCommand,
  ListVersionsByFunctionCommand,
  PublishVersionCommand,
  ResourceNotFoundException,
  UpdateAliasCommand,
  UpdateFunctionConfigurationCommand,
} from "@aws-sdk/client-lambda";

const FUNCTION = "js-hello";
const ROLE = "arn:aws:iam::000000000000:role/gust";

// ScenarioError is a mismatch; anything else thrown is a crash.
class ScenarioError extends Error {}

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new ScenarioError(`environment variable ${name} is not set`);
  }
  return v;
}

// check fails the scenario unless got equals want (compared as JSON).
function check(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new ScenarioError(`${what} = ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

function ensure(what, ok, detail) {
  if (!ok) {
    throw new ScenarioError(`${what}: ${detail}`);
  }
}

// client is the SDK client, made in main from the environment.
let client;

function newClient() {
  return new LambdaClient({
    endpoint: env("GUST_ENDPOINT"),
    region: "us-east-1",
    credentials: {
      accessKeyId: env("AWS_ACCESS_KEY_ID"),
      secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
    },
    // A failure must surface at once, not after retries.
    maxAttempts: 1,
  });
}

const steps = [];

// call sends cmd, recording the step; a rejected call fails the scenario
// with the SDK's view of the error.
async function call(step, cmd) {
  try {
    const out = await client.send(cmd);
    steps.push(step);
    return out;
  } catch (err) {
    throw new ScenarioError(`${step}: ${describe(err)}`);
  }
}

function describe(err) {
  const status = err?.$metadata?.httpStatusCode;
  const parts = [`${err?.name ?? "Error"}: ${err?.message ?? err}`];
  if (status !== undefined) parts.push(`HTTP ${status}`);
  return parts.join(", ");
}

const decoder = new TextDecoder();

// invoke calls the function with {"name": name} and checks the greeting.
async function invoke(step, qualifier, name, extra = {}) {
  const out = await call(
    step,
    new InvokeCommand({
      FunctionName: FUNCTION,
      Qualifier: qualifier,
      Payload: new TextEncoder().encode(JSON.stringify({ name })),
      ...extra,
    }),
  );
  const text = decoder.decode(out.Payload);
  check(`${step} StatusCode`, out.StatusCode, 200);
  ensure(`${step} FunctionError`, out.FunctionError === undefined, `${out.FunctionError}: ${text}`);
  const payload = JSON.parse(text);
  check(`${step} payload`, payload, { message: `Hello, ${name}!` });
  return out;
}

async function main() {
  client = newClient();
  const wasm = readFileSync(env("GUST_WASM"));
  const sha = createHash("sha256").update(wasm).digest("base64");

  // CreateFunction: the raw module as ZipFile.
  const created = await call(
    "CreateFunction",
    new CreateFunctionCommand({
      FunctionName: FUNCTION,
      Runtime: "wasm",
      Role: ROLE,
      Code: { ZipFile: wasm },
      Description: "greets, from the JS SDK",
      MemorySize: 128,
      Timeout: 10,
    }),
  );
  check("CreateFunction FunctionName", created.FunctionName, FUNCTION);
  check("CreateFunction Runtime", created.Runtime, "wasm");
  check("CreateFunction Version", created.Version, "$LATEST");
  check("CreateFunction State", created.State, "Active");
  check("CreateFunction CodeSha256", created.CodeSha256, sha);
  check("CreateFunction CodeSize", created.CodeSize, wasm.length);
  check("CreateFunction MemorySize", created.MemorySize, 128);
  ensure("CreateFunction FunctionArn", created.FunctionArn?.endsWith(`:function:${FUNCTION}`), created.FunctionArn);

  // PublishVersion 1, and an alias on it.
  const v1 = await call("PublishVersion 1", new PublishVersionCommand({ FunctionName: FUNCTION }));
  check("PublishVersion Version", v1.Version, "1");
  check("PublishVersion FunctionArn", v1.FunctionArn, `${created.FunctionArn}:1`);
  check("PublishVersion CodeSha256", v1.CodeSha256, sha);

  const alias = await call(
    "CreateAlias",
    new CreateAliasCommand({ FunctionName: FUNCTION, Name: "live", FunctionVersion: "1", Description: "production" }),
  );
  check("CreateAlias Name", alias.Name, "live");
  check("CreateAlias FunctionVersion", alias.FunctionVersion, "1");
  check("CreateAlias AliasArn", alias.AliasArn, `${created.FunctionArn}:live`);
  ensure("CreateAlias RevisionId", typeof alias.RevisionId === "string" && alias.RevisionId !== "", alias.RevisionId);

  // Invoke through the alias runs version 1.
  const viaAlias = await invoke("Invoke live", "live", "Ada", { LogType: "Tail" });
  check("Invoke live ExecutedVersion", viaAlias.ExecutedVersion, "1");
  const tail = Buffer.from(viaAlias.LogResult ?? "", "base64").toString("utf8");
  ensure("Invoke live LogResult", tail.includes("REPORT RequestId:"), `no REPORT line in ${JSON.stringify(tail)}`);
  const latest = await invoke("Invoke $LATEST", undefined, "Grace");
  check("Invoke $LATEST ExecutedVersion", latest.ExecutedVersion, "$LATEST");

  // Change the configuration and publish version 2.
  const updated = await call(
    "UpdateFunctionConfiguration",
    new UpdateFunctionConfigurationCommand({
      FunctionName: FUNCTION,
      MemorySize: 256,
      Environment: { Variables: { RELEASE: "2" } },
    }),
  );
  check("UpdateFunctionConfiguration MemorySize", updated.MemorySize, 256);
  check("UpdateFunctionConfiguration Environment", updated.Environment?.Variables, { RELEASE: "2" });
  const v2 = await call("PublishVersion 2", new PublishVersionCommand({ FunctionName: FUNCTION, Description: "release 2" }));
  check("PublishVersion Version", v2.Version, "2");
  check("PublishVersion MemorySize", v2.MemorySize, 256);
  check("PublishVersion Description", v2.Description, "release 2");

  const versions = await call("ListVersionsByFunction", new ListVersionsByFunctionCommand({ FunctionName: FUNCTION }));
  check("ListVersionsByFunction", versions.Versions?.map((v) => v.Version), ["$LATEST", "1", "2"]);
  const v2direct = await invoke("Invoke 2", "2", "Lin");
  check("Invoke 2 ExecutedVersion", v2direct.ExecutedVersion, "2");

  // Send half of the alias's traffic to version 2.
  const split = await call(
    "UpdateAlias (weighted)",
    new UpdateAliasCommand({
      FunctionName: FUNCTION,
      Name: "live",
      FunctionVersion: "1",
      RevisionId: alias.RevisionId,
      RoutingConfig: { AdditionalVersionWeights: { 2: 0.5 } },
    }),
  );
  check("UpdateAlias FunctionVersion", split.FunctionVersion, "1");
  check("UpdateAlias RoutingConfig", split.RoutingConfig, { AdditionalVersionWeights: { 2: 0.5 } });
  ensure("UpdateAlias RevisionId", split.RevisionId && split.RevisionId !== alias.RevisionId, "unchanged after an update");

  const got = await call("GetAlias", new GetAliasCommand({ FunctionName: FUNCTION, Name: "live" }));
  check("GetAlias FunctionVersion", got.FunctionVersion, "1");
  check("GetAlias RoutingConfig", got.RoutingConfig, { AdditionalVersionWeights: { 2: 0.5 } });
  check("GetAlias Description", got.Description, "production");
  check("GetAlias RevisionId", got.RevisionId, split.RevisionId);

  // Both versions serve the alias. With weight 0.5 the chance that 200
  // invocations all land on one version is 2^-199.
  const seen = new Set();
  let invocations = 0;
  while (seen.size < 2 && invocations < 200) {
    invocations++;
    const out = await invoke("Invoke live (weighted)", "live", "Ada");
    seen.add(out.ExecutedVersion);
  }
  check("ExecutedVersions of the weighted alias", [...seen].sort(), ["1", "2"]);

  // Move the alias to 2 and drop the split (an empty weight map removes it).
  const moved = await call(
    "UpdateAlias (move)",
    new UpdateAliasCommand({
      FunctionName: FUNCTION,
      Name: "live",
      FunctionVersion: "2",
      RoutingConfig: { AdditionalVersionWeights: {} },
    }),
  );
  check("UpdateAlias FunctionVersion", moved.FunctionVersion, "2");
  ensure(
    "UpdateAlias RoutingConfig",
    Object.keys(moved.RoutingConfig?.AdditionalVersionWeights ?? {}).length === 0,
    `still ${JSON.stringify(moved.RoutingConfig)}`,
  );
  const afterMove = await invoke("Invoke live (moved)", "live", "Ada");
  check("Invoke live (moved) ExecutedVersion", afterMove.ExecutedVersion, "2");
  const aliases = await call("ListAliases", new ListAliasesCommand({ FunctionName: FUNCTION }));
  check("ListAliases", aliases.Aliases?.map((a) => [a.Name, a.FunctionVersion]), [["live", "2"]]);

  // Errors arrive as the SDK's typed exceptions.
  await expectNotFound("GetFunction (missing function)", new GetFunctionCommand({ FunctionName: "no-such-function" }));
  await expectNotFound("GetAlias (missing alias)", new GetAliasCommand({ FunctionName: FUNCTION, Name: "nope" }));
  await expectNotFound("Invoke (missing version)", new InvokeCommand({ FunctionName: FUNCTION, Qualifier: "9" }));

  // DeleteFunction removes the function, its versions and aliases.
  await call("DeleteFunction", new DeleteFunctionCommand({ FunctionName: FUNCTION }));
  await expectNotFound("GetFunction (deleted)", new GetFunctionCommand({ FunctionName: FUNCTION }));
  await expectNotFound("Invoke live (deleted)", new InvokeCommand({ FunctionName: FUNCTION, Qualifier: "live" }));

  return { sdk: "@aws-sdk/client-lambda", node: process.version, function: FUNCTION, weightedInvocations: invocations, steps };
}

// expectNotFound sends cmd and requires Lambda's ResourceNotFoundException,
// decoded by the SDK into its exported class.
async function expectNotFound(step, cmd) {
  let err;
  try {
    await client.send(cmd);
  } catch (e) {
    err = e;
  }
  ensure(step, err !== undefined, "succeeded, want ResourceNotFoundException");
  ensure(step, err instanceof ResourceNotFoundException, `got ${describe(err)}, want ResourceNotFoundException`);
  ensure(step, err instanceof LambdaServiceException, "ResourceNotFoundException is not a LambdaServiceException");
  check(`${step} HTTP status`, err.$metadata?.httpStatusCode, 404);
  ensure(`${step} message`, typeof err.message === "string" && err.message !== "", "empty");
  steps.push(step);
}

try {
  const summary = await main();
  console.log(JSON.stringify({ ok: true, ...summary }));
} catch (err) {
  const msg = err instanceof ScenarioError ? err.message : (err?.stack ?? String(err));
  console.error(`scenario failed after [${steps.join(", ")}]: ${msg}`);
  process.exit(1);
}
