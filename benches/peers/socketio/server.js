// Socket.IO peer: join a room, broadcast each message to the room's other members.
// No persistence. Run: node server.js [port]   (or PORT=...; default 4001). 127.0.0.1 only.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || process.env.PORT || 4001);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  // Keep heartbeats far apart so they are not part of the measure.
  pingInterval: 25000,
  pingTimeout: 60000,
});

io.on("connection", (socket) => {
  // join: the room's name (a string)
  socket.on("join", (room, ack) => {
    socket.join(String(room));
    if (typeof ack === "function") ack("ok");
  });
  // message: {room, body}; delivered to every other member of the room.
  socket.on("message", (msg) => {
    if (msg && typeof msg.room === "string") socket.to(msg.room).emit("message", msg);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`socketio peer listening on 127.0.0.1:${port}`);
});
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
