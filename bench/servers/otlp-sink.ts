/*
 * The OTLP gRPC endpoint of the traced targets, as its own process so that decoding spans
 * costs neither the load generator nor a gateway. Counts spans without keeping them.
 * Prints `ready <port>`; answers the IPC message 'count' with { spans }.
 */
import { startOtlpReceiver } from '../../test/helpers/otlp-receiver.js';

const receiver = await startOtlpReceiver({ retainSpans: false });
process.on('message', (message) => {
  if (message === 'count') process.send?.({ spans: receiver.spanCount });
});
// Exit with the bench: the IPC channel closes when the parent goes.
process.on('disconnect', () => void receiver.close().then(() => process.exit(0)));
console.log(`ready ${receiver.port}`);
