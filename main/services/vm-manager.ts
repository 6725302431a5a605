/**
 * The old home of the VM service, kept so existing imports work. The service is now split by job
 * (issue 7): vm-service.ts (the facade), library/, runtime/, drivers/ — see vm-service.ts.
 */
export { LocalVmService as VmManager, DEFAULTS, type VmServiceDeps as VmManagerDeps } from './vm-service';
export { shellArg } from '../common/shell-arg';
