// Toasts and confirmations, imported with their own CSS (Element Plus is imported per component,
// not installed whole). `grouping` folds the same message repeated into one toast with a count,
// so one failure never stacks identical alerts.
import { ElMessage, ElMessageBox } from "element-plus";
import "element-plus/es/components/message/style/css";
import "element-plus/es/components/message-box/style/css";

export function toastError(message: string) {
  ElMessage.error({ message, grouping: true });
}

export function toastSuccess(message: string) {
  ElMessage.success({ message, grouping: true });
}

export interface ConfirmText {
  title: string;
  message: string;
  confirm: string;
  cancel: string;
}

/** Resolves true when the user confirms, false when they back out. */
export async function confirmAction(text: ConfirmText): Promise<boolean> {
  try {
    await ElMessageBox.confirm(text.message, text.title, {
      confirmButtonText: text.confirm,
      cancelButtonText: text.cancel,
      type: "warning",
    });
    return true;
  } catch {
    return false;
  }
}
