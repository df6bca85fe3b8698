// Gust's Node.js runtime client: runs a Lambda handler (MODULE.FUNCTION in
// _HANDLER) from LAMBDA_TASK_ROOT against the Lambda Runtime API at
// AWS_LAMBDA_RUNTIME_API. Standard library only. Handlers may be async,
// return a promise, or take a callback (event, context, callback); modules
// may be CommonJS (.js, .cjs) or ES modules (.mjs, or .js in a package of
// type "module").
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

const api = process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001';
const sep = api.lastIndexOf(':');
const apiHost = api.slice(0, sep);
const apiPort = Number(api.slice(sep + 1));
const base = '/2018-06-01/runtime';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
const handlerName = process.env._HANDLER || 'index.handler';

let currentRequestId;

function request(method, urlPath, body, headers) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const h = Object.assign({}, headers || {});
    if (data !== undefined) h['Content-Length'] = data.length;
    const req = http.request({ host: apiHost, port: apiPort, path: urlPath, method, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

function errorPayload(err, type) {
  if (err instanceof Error) {
    const lines = String(err.stack || '').split('\n');
    return {
      errorType: type || err.name || 'Error',
      errorMessage: type && type.startsWith('Runtime.') ? `${err.name}: ${err.message}` : String(err.message),
      stackTrace: lines.slice(1).map((l) => l.trim()).filter(Boolean),
    };
  }
  let msg;
  try { msg = typeof err === 'string' ? err : JSON.stringify(err); } catch (_) { msg = String(err); }
  return { errorType: type || typeof err, errorMessage: String(msg), stackTrace: [] };
}

async function postError(urlPath, payload) {
  const res = await request('POST', urlPath, JSON.stringify(payload), {
    'Content-Type': 'application/json',
    'Lambda-Runtime-Function-Error-Type': payload.errorType,
  });
  if (res.status !== 202) process.stderr.write(`runtime API answered ${res.status}: ${res.body}\n`);
}

// Lambda's log line format for console output.
for (const [name, level] of [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['debug', 'DEBUG'], ['trace', 'TRACE']]) {
  const stream = level === 'ERROR' || level === 'WARN' ? process.stderr : process.stdout;
  console[name] = (...args) => {
    const msg = util.format(...args).replace(/\n/g, '\r');
    stream.write(`${new Date().toISOString()}\t${currentRequestId || 'undefined'}\t${level}\t${msg}\n`);
  };
}

class ImportModuleError extends Error {}
ImportModuleError.prototype.name = 'Runtime.ImportModuleError';

async function loadModule(modPath) {
  const candidates = ['.js', '.mjs', '.cjs'].map((ext) => modPath + ext).filter((f) => fs.existsSync(f));
  if (candidates.length === 0) {
    throw new ImportModuleError(`Error: Cannot find module '${path.basename(modPath)}'`);
  }
  const file = candidates[0];
  if (file.endsWith('.mjs')) return import(pathToFileURL(file).href);
  try {
    return require(file);
  } catch (e) {
    if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) return import(pathToFileURL(file).href);
    throw e;
  }
}

async function loadHandler() {
  const dot = handlerName.lastIndexOf('.');
  const modName = handlerName.slice(0, dot);
  const fnName = handlerName.slice(dot + 1);
  let mod;
  try {
    mod = await loadModule(path.resolve(taskRoot, modName));
  } catch (e) {
    if (e instanceof ImportModuleError) throw Object.assign(e, { lambdaType: 'Runtime.ImportModuleError' });
    if (e instanceof SyntaxError) e.lambdaType = 'Runtime.UserCodeSyntaxError';
    else if (e && e.code === 'MODULE_NOT_FOUND') e.lambdaType = 'Runtime.ImportModuleError';
    throw e;
  }
  let fn = mod && mod[fnName];
  if (typeof fn !== 'function' && mod && mod.default) fn = mod.default[fnName];
  if (typeof fn !== 'function') {
    const e = new Error(`${modName}.${fnName} is undefined or not exported`);
    e.name = 'Runtime.HandlerNotFound';
    e.lambdaType = 'Runtime.HandlerNotFound';
    throw e;
  }
  return fn;
}

function makeContext(headers) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const ctx = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  if (headers['lambda-runtime-client-context']) {
    try { ctx.clientContext = JSON.parse(headers['lambda-runtime-client-context']); } catch (_) { /* ignored */ }
  }
  if (headers['lambda-runtime-cognito-identity']) {
    try { ctx.identity = JSON.parse(headers['lambda-runtime-cognito-identity']); } catch (_) { /* ignored */ }
  }
  return ctx;
}

function run(fn, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const once = (f) => (v) => { if (!settled) { settled = true; f(v); } };
    const ok = once(resolve);
    const fail = once(reject);
    const callback = (err, result) => (err !== undefined && err !== null ? fail(err) : ok(result));
    ctx.done = callback;
    ctx.succeed = (r) => ok(r);
    ctx.fail = (e) => fail(e);
    try {
      const r = fn(event, ctx, callback);
      if (r && typeof r.then === 'function') r.then(ok, fail);
      else if (fn.length < 3) ok(r);
    } catch (e) {
      fail(e);
    }
  });
}

async function main() {
  let fn;
  try {
    fn = await loadHandler();
  } catch (e) {
    const payload = errorPayload(e, e && e.lambdaType);
    console.error(JSON.stringify(payload));
    await postError(`${base}/init/error`, payload);
    process.exit(1);
  }
  const fail = async (type) => {
    const handler = async (err) => {
      const payload = errorPayload(err, type);
      console.error(JSON.stringify(payload));
      if (currentRequestId) await postError(`${base}/invocation/${currentRequestId}/error`, payload).catch(() => {});
      process.exit(128);
    };
    return handler;
  };
  process.on('uncaughtException', await fail('Runtime.UncaughtException'));
  process.on('unhandledRejection', await fail('Runtime.UnhandledPromiseRejection'));
  for (;;) {
    const next = await request('GET', `${base}/invocation/next`);
    if (next.status !== 200) throw new Error(`runtime API answered ${next.status} to next: ${next.body}`);
    const id = next.headers['lambda-runtime-aws-request-id'];
    currentRequestId = id;
    if (next.headers['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = next.headers['lambda-runtime-trace-id'];
    else delete process.env._X_AMZN_TRACE_ID;
    let event;
    try {
      event = next.body.length ? JSON.parse(next.body.toString('utf8')) : null;
    } catch (e) {
      await postError(`${base}/invocation/${id}/error`, errorPayload(e, 'Runtime.UnmarshalError'));
      continue;
    }
    try {
      const result = await run(fn, event, makeContext(next.headers));
      let body;
      try {
        body = JSON.stringify(result === undefined ? null : result);
      } catch (e) {
        await postError(`${base}/invocation/${id}/error`, errorPayload(e, 'Runtime.MarshalError'));
        continue;
      }
      const res = await request('POST', `${base}/invocation/${id}/response`, body, { 'Content-Type': 'application/json' });
      if (res.status !== 202) process.stderr.write(`runtime API answered ${res.status}: ${res.body}\n`);
    } catch (e) {
      const payload = errorPayload(e);
      console.error(`Invoke Error \t${JSON.stringify(payload)}`);
      await postError(`${base}/invocation/${id}/error`, payload);
    }
    currentRequestId = undefined;
  }
}

main().catch((e) => {
  process.stderr.write(`gust bootstrap: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
