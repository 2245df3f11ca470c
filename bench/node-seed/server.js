// The seed's koa + ws chat room (see the protocol reference), kept as close to the original as
// today's packages allow, so the benchmark compares passerby with what it replaces.
//
// Differences from the seed, each forced or needed to benchmark it at all:
// - ws 8 passes the upgrade request to 'connection' instead of ws.upgradeReq, and wss.clients
//   is a Set (Array.from it);
// - an invalid user is closed with 4001 and then ignored (the seed crashed on it);
// - the port comes from argv, and it prints "listening on http://ADDR" like passerby;
// - pages are not rendered (no nunjucks): GET /ws answers the offered name as text.
'use strict';
const url = require('url');
const ws = require('ws');
const Cookies = require('cookies');
const Koa = require('koa');
const bodyParser = require('koa-bodyparser');

const port = Number(process.argv[2] || 3000);
const app = new Koa();
let index = 0;

app.use(async (ctx, next) => {
  ctx.state.user = parseUser(ctx.cookies.get('name') || '');
  await next();
});
app.use(bodyParser());
app.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/ws') {
    const names = '甲乙丙丁戊己庚辛壬癸';
    ctx.body = `路人${names[index % 10]}`;
  } else if (ctx.method === 'POST' && ctx.path === '/wsin') {
    index++;
    const name = ctx.request.body.name || '路人甲';
    const user = { type: '游客', id: index, name: name, image: index % 10 };
    const value = Buffer.from(JSON.stringify(user)).toString('base64');
    ctx.cookies.set('name', value);
    ctx.body = { code: 0, data: '登录成功' };
  } else if (ctx.method === 'GET' && ctx.path === '/wsout') {
    ctx.cookies.set('name', '');
    ctx.body = { code: 0, data: '退出成功' };
  } else {
    await next();
  }
});

function parseUser(obj) {
  if (!obj) {
    return;
  }
  let s = '';
  if (typeof obj === 'string') {
    s = obj;
  } else if (obj.headers) {
    const cookies = new Cookies(obj, null);
    s = cookies.get('name');
  }
  if (s) {
    try {
      return JSON.parse(Buffer.from(s, 'base64').toString());
    } catch (e) {}
  }
}

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

const wss = new ws.Server({ server: server });
wss.broadcast = function broadcast(data) {
  wss.clients.forEach(function each(client) {
    client.send(data);
  });
};

let messageIndex = 0;
function createMessage(type, user, data) {
  messageIndex++;
  return JSON.stringify({ id: messageIndex, type: type, user: user, data: data });
}

wss.on('connection', function (socket, req) {
  url.parse(req.url, true);
  const user = parseUser(req);
  if (!user) {
    socket.close(4001, 'Invalid user');
    return;
  }
  socket.user = user;
  socket.on('message', function (message) {
    message = message.toString();
    if (message && message.trim()) {
      wss.broadcast(createMessage('chat', this.user, message.trim()));
    }
  });
  socket.on('close', function () {
    wss.broadcast(createMessage('left', this.user, `${this.user.name} is left.`));
  });
  wss.broadcast(createMessage('join', user, `${user.name} joined.`));
  const users = Array.from(wss.clients).map((client) => client.user);
  socket.send(createMessage('list', user, users));
});
