// The built-in backends register their schemes here, each with a loader that imports its module only when a
// URL of that scheme is opened (cunīcu's backends register in init(); a lazy import keeps start-up fast).
// Import openBackend from this module, not from the registry, so the built-in schemes are always known.
// A new built-in backend is one file exporting createBackend plus one line below.
import { registerBackend } from '../backend-registry.js'

registerBackend('grpc', () => import('./grpc.js'))
registerBackend('inprocess', () => import('./inprocess.js'))
registerBackend('multicast', () => import('./multicast.js'))

export { openBackend, parseBackendUrl, registerBackend, registeredSchemes } from '../backend-registry.js'
