'use strict';
// A Lambda runtime for Node.js on the Runtime API (2018-06-01) with nothing but the `http`
// module: what a team writes when it wants a Node version or start-up the managed runtimes do
// not offer. It loads the handler named by _HANDLER (file.export), then loops: GET the next
// event, call the handler (awaiting a promise), POST the result or the error. Log lines carry
// the request id, as the managed runtime's do.

const http = require('http');
const path = require('path');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const [apiHost, apiPort] = [api.slice(0, api.lastIndexOf(':')), api.slice(api.lastIndexOf(':') + 1)];
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let currentId = '';

function call(method, route, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: apiHost, port: apiPort, method, agent, path: `/2018-06-01/runtime${route}`,
      headers: { 'Content-Type': 'application/json', ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function patchConsole() {
  for (const [name, level] of [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR']]) {
    const write = name === 'log' || name === 'info' ? process.stdout : process.stderr;
    console[name] = (...args) => {
      const text = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
      write.write(`${new Date().toISOString()}\t${currentId}\t${level}\t${text.replace(/\n/g, '\r')}\n`);
    };
  }
}

function errorBody(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return { errorType: e.name || 'Error', errorMessage: e.message, trace: String(e.stack || '').split('\n') };
}

function context(headers) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return {
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

async function load() {
  const [file, name] = (process.env._HANDLER || 'handler.handler').split('.');
  const handler = require(path.join(process.env.LAMBDA_TASK_ROOT, file))[name];
  if (typeof handler !== 'function') throw new TypeError(`${process.env._HANDLER} is not a function`);
  return handler;
}

async function main() {
  patchConsole();
  process.on('unhandledRejection', (reason) => console.error('Unhandled Promise Rejection', errorBody(reason)));
  let handler;
  try {
    handler = await load();
  } catch (err) {
    console.error('Init Error', errorBody(err));
    await call('POST', '/init/error', JSON.stringify(errorBody(err)),
      { 'Lambda-Runtime-Function-Error-Type': 'Runtime.ImportModuleError' });
    process.exit(1);
  }
  for (;;) {
    const next = await call('GET', '/invocation/next');
    currentId = next.headers['lambda-runtime-aws-request-id'];
    let result;
    try {
      const event = JSON.parse(next.body.toString('utf8'));
      result = await handler(event, context(next.headers));
    } catch (err) {
      const body = errorBody(err);
      console.error('Invoke Error', body);
      await call('POST', `/invocation/${currentId}/error`, JSON.stringify(body),
        { 'Lambda-Runtime-Function-Error-Type': body.errorType });
      continue;
    }
    await call('POST', `/invocation/${currentId}/response`, JSON.stringify(result === undefined ? null : result));
  }
}

main();
