// The practical ceiling: a bare node:http server that reads the body and answers 200.
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    res.statusCode = 200;
    res.setHeader('content-type', 'application/json');
    res.end('{"status":"ok"}');
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
