export default function ProjectFormPage() {
  return null;
}
