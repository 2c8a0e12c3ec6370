'use strict';
// Warden's language watch for Node.js, shipped in the layer as `warden/lib/node-watch.js` and
// loaded before any function code (`NODE_OPTIONS=--require …`: the exec wrapper sets it for a
// managed runtime, a custom runtime's bootstrap exports it).
//
// A payload evaluated inside the runtime can replace one of the runtime's own functions
// (JSON.parse, console.log, http.request, require) so that its code runs at every later
// invocation: no thread, no process, no system call to see until it fires. The watch turns
// the watched properties into accessors that behave like the plain properties they were, and
// reports each replacement at the moment it happens, so that the invocation that planted it
// is the one found. Reports go through the in-process guard: an open of a path under
// /dev/null (which fails whatever happens), turned by the guard into a `patched` event. With
// no guard loaded, the watch costs one failed open per replacement and reports nothing.
//
// What it cannot see: a watched property deleted and then assigned again, a module's
// functions replaced before the function first required it, or one imported only as an ES
// module. It never throws into function code and never changes what a property holds.
(function wardenWatch() {
  try {
    arm();
  } catch (error) {
    // The function runs unwatched rather than not at all.
    process.stderr.write(`[warden-watch] not armed: ${error && error.message}\n`);
  }
}());

function arm() {
  const fs = require('fs');
  const Module = require('module');
  // The originals, taken before any function code runs: the watch calls these, never what
  // the properties hold later.
  const defineProperty = Object.defineProperty;
  const reflectDefine = Reflect.defineProperty;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const hasOwn = Object.prototype.hasOwnProperty;

  const REPORT = '/dev/null/warden/patched/';
  // Reports per second at most: a function that replaces something in a loop cannot flood
  // the guard's channel.
  const MAX_REPORTS_PER_SECOND = 20;
  const openSync = fs.openSync;
  const now = Date.now;
  let windowStart = 0;
  let reportsInWindow = 0;

  function report(name) {
    const t = now();
    if (t - windowStart >= 1000) {
      windowStart = t;
      reportsInWindow = 0;
    }
    if (reportsInWindow >= MAX_REPORTS_PER_SECOND) {
      return;
    }
    reportsInWindow += 1;
    try {
      openSync(REPORT + name, 'r');
    } catch (_) {
      // Expected: nothing can be opened under /dev/null.
    }
  }

  // owner object → (key → watched name), for defineProperty on a watched property.
  const watched = new WeakMap();

  // Makes `owner[key]` an accessor that holds and returns the current value and reports an
  // assignment that changes it. Only a writable, configurable data property is watched, so
  // that every assignment that worked before still works and nothing that failed succeeds.
  function watch(owner, key, name) {
    const d = getOwnPropertyDescriptor(owner, key);
    if (!d || !('value' in d) || !d.writable || !d.configurable) {
      return;
    }
    let current = d.value;
    defineProperty(owner, key, {
      configurable: true,
      enumerable: d.enumerable,
      get() {
        return current;
      },
      set(value) {
        if (this !== owner) {
          // An object that inherits from the owner gets its own property, as it would
          // have from a plain one: the owner's stays as it was.
          defineProperty(this, key, {
            value, writable: true, enumerable: true, configurable: true,
          });
          return;
        }
        if (value !== current) {
          report(name);
        }
        current = value;
      },
    });
    let keys = watched.get(owner);
    if (!keys) {
      keys = new Map();
      watched.set(owner, keys);
    }
    keys.set(key, name);
  }

  function watchAll(owner, prefix, keys) {
    if (owner === null || (typeof owner !== 'object' && typeof owner !== 'function')) {
      return;
    }
    for (const key of keys) {
      try {
        watch(owner, key, `${prefix}.${key}`);
      } catch (_) {
        // A property that cannot be watched stays as it is.
      }
    }
  }

  // Redefining a watched property is a replacement too; the property is watched again
  // afterwards when it is still a writable, configurable value.
  function watchedName(target, key) {
    const keys = (typeof target === 'object' || typeof target === 'function') && target !== null
      ? watched.get(target) : undefined;
    return keys ? keys.get(key) : undefined;
  }

  function replaces(target, key, descriptor) {
    return Boolean(descriptor) && ('get' in descriptor || 'set' in descriptor
      || ('value' in descriptor && descriptor.value !== target[key]));
  }

  function wrapDefine(original, returnsBoolean) {
    return function (target, key, descriptor) {
      const name = watchedName(target, key);
      if (name === undefined) {
        return original.apply(this, arguments);
      }
      let changed = false;
      try {
        changed = replaces(target, key, descriptor);
      } catch (_) {
        changed = true;
      }
      const result = original.apply(this, arguments);
      if (changed && (!returnsBoolean || result)) {
        report(name);
        try {
          watch(target, key, name);
        } catch (_) {
          // Left as defined.
        }
      }
      return result;
    };
  }
  const wrappedDefine = wrapDefine(defineProperty, false);
  const wrappedReflectDefine = wrapDefine(reflectDefine, true);
  defineProperty(Object, 'defineProperty', {
    value: wrappedDefine, writable: true, enumerable: false, configurable: true,
  });
  defineProperty(Reflect, 'defineProperty', {
    value: wrappedReflectDefine, writable: true, enumerable: false, configurable: true,
  });

  // Built-in modules are watched when first required: loading them all up front would cost
  // every cold start, and most functions use a few.
  const MODULES = {
    http: ['request', 'get'],
    https: ['request', 'get'],
    net: ['connect', 'createConnection'],
    tls: ['connect'],
    dns: ['lookup', 'resolve'],
    child_process: ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'],
  };
  const armed = new Set();
  const load = Module._load;
  Module._load = function (request) {
    const exported = load.apply(this, arguments);
    if (typeof request === 'string') {
      const bare = request.startsWith('node:') ? request.slice(5) : request;
      if (!armed.has(bare) && hasOwn.call(MODULES, bare)) {
        armed.add(bare);
        watchAll(exported, bare, MODULES[bare]);
      }
    }
    return exported;
  };
  watchAll(JSON, 'JSON', ['parse', 'stringify']);
  watchAll(console, 'console', ['log', 'info', 'warn', 'error', 'debug', 'trace']);
  watchAll(globalThis, 'globalThis',
    ['fetch', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'eval']);
  watchAll(Module, 'Module', ['_load', '_resolveFilename']);
  watchAll(Module.prototype, 'Module.prototype', ['require', '_compile']);
  watchAll(Object, 'Object', ['defineProperty']);
  watchAll(Reflect, 'Reflect', ['defineProperty']);
}
