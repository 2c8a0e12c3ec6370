'use strict';
// Storefront orders API on Node.js (API Gateway proxy integration): validates an order, prices
// it from the catalogue, renders the merchant's confirmation message and, when the order asks
// for it, notifies the merchant's fulfilment webhook (ORDER_WEBHOOK_URL), retrying once.
//
// Vulnerable on purpose: merchants send their own confirmation template, and the engine
// compiles each `{{ expression }}` with `new Function` (awaiting promises, so that async
// helpers work): a template runs any JavaScript it likes inside the runtime process
// (server-side template injection). Errors are not caught: a bad template or body is a 502.

const crypto = require('crypto');
const http = require('http');

const CURRENCIES = { EUR: 0.2, USD: 0, GBP: 0.2, CHF: 0.081 };
const CATALOGUE = new Map(Array.from({ length: 399 }, (_, i) => [
  `SKU-${String(i + 1).padStart(4, '0')}`, Math.round((3.5 + ((i + 1) * 7.31) % 180) * 100) / 100]));
const FIRST = ['Ana', 'Ben', 'Chloe', 'Dev', 'Eli', 'Fatima', 'Goran', 'Hana', 'Ivan', 'Jun', 'Kofi', 'Lea'];
const LAST = ['Silva', 'Novak', 'Okafor', 'Tanaka', 'Meyer', 'Rossi', 'Khan', 'Dubois', 'Larsen', 'Ortiz'];
const DEFAULT_TEMPLATE = 'Thanks {{customer.name}}! Order {{orderId}}: {{lines}} {{plural(lines, "item")}}, {{money(total)}}.';
const compiled = new Map();

// The customer directory (a cache of the CRM, here derived from the id): `lookup` is also a
// template helper, so that messages can greet the customer.
function lookup(id) {
  const n = typeof id === 'number' ? id : Number(String(id).replace(/^C/, ''));
  const h = crypto.createHash('sha256').update(`customer:${n}`).digest('hex');
  const first = FIRST[parseInt(h.slice(0, 2), 16) % FIRST.length];
  const last = LAST[parseInt(h.slice(2, 4), 16) % LAST.length];
  return {
    id: `C${String(n).padStart(5, '0')}`, name: `${first} ${last}`,
    email: `${first}.${last}${parseInt(h.slice(4, 7), 16)}@example.com`.toLowerCase(),
    tier: ['free', 'pro', 'business'][parseInt(h[7], 16) % 3],
    phone: `+${parseInt(h.slice(8, 10), 16)} ${parseInt(h.slice(10, 18), 16) % 1e9}`,
    address: `${parseInt(h.slice(18, 20), 16)} ${last} Street`,
    card: `**** ${h.slice(20, 24)}`,
  };
}

function compile(template) {
  const parts = template.split(/\{\{(.*?)\}\}/s);
  const fns = parts.map((part, i) => (i % 2 ? new Function('ctx', `with (ctx) { return (${part}); }`) : null));
  return async (ctx) => (await Promise.all(parts.map((part, i) => (i % 2 ? fns[i](ctx) : part)))).join('');
}

function render(template, ctx) {
  if (!compiled.has(template)) compiled.set(template, compile(template));
  return compiled.get(template)(ctx);
}

const helpers = {
  money: (x, currency) => `${(currency || 'EUR')} ${Number(x).toFixed(2)}`,
  plural: (n, word) => (n === 1 ? word : `${word}s`),
  upper: (s) => String(s).toUpperCase(),
  ships: (days) => new Date(Date.now() + days * 86400000).toISOString().slice(0, 10),
  lookup,
};

function validate(order) {
  const problems = [];
  if (!/^C\d{5}$/.test(String(order.customer_id))) problems.push('customer_id');
  if (!(order.currency in CURRENCIES)) problems.push('currency');
  order.items.forEach((item, i) => {
    if (!CATALOGUE.has(item.sku)) problems.push(`items[${i}].sku`);
    if (!Number.isInteger(item.qty) || item.qty <= 0 || item.qty > 100) problems.push(`items[${i}].qty`);
  });
  if (!order.items.length) problems.push('items');
  return problems;
}

function price(order) {
  const subtotal = order.items.reduce((sum, item) => sum + CATALOGUE.get(item.sku) * item.qty, 0);
  const tax = Math.round(subtotal * CURRENCIES[order.currency] * 100) / 100;
  return { subtotal: Math.round(subtotal * 100) / 100, tax, total: Math.round((subtotal + tax) * 100) / 100 };
}

function post(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', timeout: 3000, headers: { 'Content-Type': 'application/json' } },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('timeout', () => req.destroy(new Error('webhook timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

async function notify(payload) {
  const body = JSON.stringify(payload);
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      const status = await post(process.env.ORDER_WEBHOOK_URL, body);
      if (status < 500) return status;
      console.log(JSON.stringify({ msg: 'webhook retry', status, attempt }));
    } catch (err) {
      console.log(JSON.stringify({ msg: 'webhook retry', error: err.message, attempt }));
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}

exports.handler = async (event) => {
  const order = JSON.parse(event.body);
  const problems = validate(order);
  if (problems.length) {
    console.log(JSON.stringify({ msg: 'rejected', problems }));
    return { statusCode: 400, body: JSON.stringify({ error: 'invalid', fields: problems }) };
  }
  const totals = price(order);
  const orderId = crypto.createHash('sha1').update(event.requestContext.requestId).digest('hex').slice(0, 12);
  const ctx = { ...helpers, ...totals, orderId, currency: order.currency, items: order.items,
    lines: order.items.length, customer: lookup(order.customer_id) };
  const message = await render(order.template || DEFAULT_TEMPLATE, ctx);
  let webhook = null;
  if (order.notify) webhook = await notify({ orderId, customer: order.customer_id, ...totals, items: order.items });
  console.log(JSON.stringify({ msg: 'accepted', orderId, total: totals.total, webhook }));
  return { statusCode: 201, body: JSON.stringify({ orderId, ...totals, message }) };
};
